"""Run every benchmark and write ``benchmarks/results/*.json`` plus the Markdown table ``RESULTS.md``.

Order: ``transfer_quality`` (held-out accuracy of every weighting, ensembles and
students; saves its students), ``signal_diagnostics`` (the fitting objective vs
accuracy on the source domains), ``robustness`` (reuses those students), then
``engine_speed`` (student vs ensemble size and CPU speed; another script, run as a
subprocess). ``RESULTS.md`` is written from the JSON files of *this* run only,
headed by the date, the machine and the exact command.

    python benchmarks/run_all.py                 # full scale (the committed results)
    python benchmarks/run_all.py --scale smoke   # a minute: checks the plumbing
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _common as C
import robustness as RB
import signal_diagnostics as SD
import transfer_quality as TQ

ENGINE_SPEED = Path(__file__).resolve().parent / "engine_speed.py"


# --------------------------------------------------------------------------- running
def run_engine_speed(scale: str, seed: int, threads: int) -> tuple[dict[str, Any] | None, str]:
    """Run ``engine_speed.py`` in a subprocess; return (its JSON, a status line)."""
    if not ENGINE_SPEED.is_file():
        msg = f"{ENGINE_SPEED.relative_to(C.REPO)} does not exist yet: speed/compression table skipped"
        print(msg, flush=True)
        return None, msg
    help_text = subprocess.run([sys.executable, str(ENGINE_SPEED), "--help"], capture_output=True, text=True, check=False).stdout
    args = [sys.executable, str(ENGINE_SPEED)]
    for flag, value in (("--scale", scale), ("--seed", str(seed)), ("--threads", str(threads))):
        if flag in help_text:
            args += [flag, value]
    print("running:", " ".join(["python", *args[1:]]).replace(str(C.REPO) + "/", ""), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=C.REPO, check=False)  # a failed speed run is reported, not raised
    seconds = round(time.perf_counter() - start, 1)
    path = C.RESULTS_DIR / "engine_speed.json"
    if proc.returncode != 0:
        return None, f"engine_speed.py failed with exit code {proc.returncode} after {seconds}s"
    if not path.is_file() or path.stat().st_mtime < time.time() - seconds - 5:
        return None, "engine_speed.py ran but did not write benchmarks/results/engine_speed.json"
    return json.loads(path.read_text()), f"{seconds}s"


# --------------------------------------------------------------------------- markdown
def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _cell(block: dict[str, float] | None, f1: bool = True) -> str:
    if not block:
        return "–"
    return f"{C.pct(block['accuracy'])} ({C.pct(block['macro_f1'])})" if f1 else C.pct(block["accuracy"])


def transfer_section(tq: dict[str, Any]) -> str:
    parts = ["## Held-out domains: accuracy % (macro-F1 %) per weighting",
             ("Teacher ensembles (E) and students (S) distilled under each weighting, same seed and settings. "
             "`oracle` picks the teacher that is best on the held-out domain's own labels (its validation split): an upper bound, never a method. "
             "`label_only`: same student architecture trained on source labels only (no teachers). "
             "Target labels are never used for training or for fitting weights.")]  # fmt: skip
    for task, res in tq["tasks"].items():
        held, means = res["held_out"], res["macro_mean"]
        ens = [w for w in C.ENSEMBLE_WEIGHTINGS if w in means["ensembles"]]
        stu = [w for w in [*C.STUDENT_WEIGHTINGS, C.LABEL_ONLY] if w in means["students"]]
        folds = "; ".join(f"{'+'.join(f['source_domains'])} → {'+'.join(f['target_domains'])}" for f in res["folds"])
        parts.append(f"### {task} ({folds}; {res['seconds']:.0f} s)")
        f0 = res["folds"][0]
        parts.append(f"Seed {f0['seed']}. Student params {f0['student_config'] or '(shipped defaults)'}, engine {f0['engine']}; "
                     + "; ".join(f"fold {i + 1} items {f['sizes']}" for i, f in enumerate(res["folds"])) + ".")  # fmt: skip
        rows = [[d, str(r["n"])] + [_cell(r["ensembles"].get(w)) for w in ens] for d, r in held.items()]
        rows.append(["**macro mean**", ""] + [f"**{_cell(means['ensembles'].get(w))}**" for w in ens])
        parts.append("Teacher ensembles:\n\n" + md_table(["held-out domain", "n"] + [f"E:{w}" for w in ens], rows))
        rows = [[d, str(r["n"])] + [_cell(r["students"].get(w)) for w in stu] for d, r in held.items()]
        rows.append(["**macro mean**", ""] + [f"**{_cell(means['students'].get(w))}**" for w in stu])
        parts.append("Distilled students:\n\n" + md_table(["held-out domain", "n"] + [f"S:{w}" for w in stu], rows))
        parts.append(teacher_section(res))
    return "\n\n".join(parts)


def teacher_section(res: dict[str, Any]) -> str:
    """Single-teacher accuracy and the learned KG / no-graph weights on each held-out domain."""
    rows = []
    teachers: list[str] = []
    for fold in res["folds"]:
        for d in fold["target_domains"]:
            r = fold["domains"][d]
            teachers = list(r["teachers"])
            kg = fold["weights"].get("kg", {}).get(d, {})
            ng = fold["weights"].get("no_graph", {}).get(d, {})
            rows.append([d] + [f"{_cell(r['teachers'][t], f1=False)} / {kg.get(t, float('nan')):.2f} / {ng.get(t, float('nan')):.2f}"
                               for t in teachers])  # fmt: skip
    return ("Per teacher on each held-out domain: test accuracy % / KG weight / no-graph weight\n\n"
            + md_table(["held-out domain"] + teachers, rows))  # fmt: skip


def robustness_section(rb: dict[str, Any]) -> str:
    parts = ["## Robustness: accuracy % under input noise (held-out mean / source mean)",
             "Same corrupted items for every model; ensembles run every teacher on the corrupted inputs."]
    for task, res in rb["tasks"].items():
        conds = list(res["conditions"])
        models = list(res["conditions"][conds[0]])
        rows = [[m] + [f"{C.pct(res['conditions'][c][m]['mean_held_out'])} / {C.pct(res['conditions'][c][m]['mean_source'])}"
                       for c in conds] for m in models]  # fmt: skip
        n = ", ".join(f"{d} {k}" for d, k in res["n"].items())
        parts.append(f"### {task} (held out: {', '.join(res['target_domains'])}; items: {n}; {res['seconds']:.0f} s)")
        parts.append(md_table(["model"] + conds, rows))
    return "\n\n".join(parts)


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, dict):
        out: list[tuple[str, str]] = []
        for k, v in obj.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(obj, list) and obj and all(not isinstance(x, (dict, list)) for x in obj):
        return [(prefix, ", ".join(map(str, obj)))]
    if isinstance(obj, list):
        out = []
        for i, v in enumerate(obj):
            out += _flatten(v, f"{prefix}[{i}]")
        return out
    if isinstance(obj, float):
        return [(prefix, f"{obj:.4g}")]
    return [(prefix, str(obj))]


def speed_section(speed: dict[str, Any] | None, status: str) -> str:
    head = "## Student vs teacher ensemble: size and CPU speed (`engine_speed.py`)"
    if speed is None:
        return f"{head}\n\nNot measured in this run: {status}."
    try:
        return f"{head}\n\n" + _speed_tables(speed)
    except (KeyError, TypeError, AttributeError):  # another layout: show every measure as written
        skip = {"machine", "command", "started", "benchmark", "meta"}
        rows = [[k, v] for k, v in _flatten({k: v for k, v in speed.items() if k not in skip})]
        return f"{head}\n\n" + md_table(["measure", "value"], rows)


def _speed_tables(speed: dict[str, Any]) -> str:
    """One table per setting: student vs ensemble size/latency/throughput, then epoch and cache timings."""
    meta = speed.get("meta", {})
    parts = [(f"Threads {meta.get('threads', '?')}, batch {meta.get('batch', '?')}, {meta.get('repeats', '?')} repeats; "
             f"{meta.get('seconds', '?')} s.")]  # fmt: skip
    for name, st in speed["settings"].items():
        rows = []
        for who in ("student", "ensemble"):
            m = st[who]
            rows.append([who, f"{m['params']:,}", f"{m['size_mb']:.2f}", f"{m['latency_ms_b1']:.1f}",
                         f"{m['latency_ms_b32']:.1f}", f"{m['items_per_s_b32']:.1f}"])  # fmt: skip
        r = st["ratios"]
        parts.append(f"### {name}\n\n" + md_table(
            ["model", "parameters", "size MB", "latency b=1 ms", "latency b=32 ms", "items/s b=32"], rows))
        ep = st.get("epochs", {})
        lines = [(f"ensemble/student: {r['params_ensemble_over_student']:.1f}× parameters, "
                 f"{r['size_ensemble_over_student']:.1f}× size; student speed-up {r['speedup_student_b1']:.1f}× (b=1), "
                 f"{r['speedup_student_b32']:.1f}× (b=32).")]  # fmt: skip
        if ep:
            lines.append("Epoch time: " + ", ".join(f"{k} {v['epoch_s']:.1f} s" for k, v in ep.items())
                         + f"; cached distillation / plain student {r['cached_epoch_over_plain']:.2f}, "
                         f"live / cached teachers {r['cache_speedup_live_over_cached']:.1f}×.")  # fmt: skip
        notes = st.get("notes")
        if notes:
            lines.append("Notes: " + "; ".join(map(str, notes)) + ".")
        parts.append("\n".join(f"- {x}" for x in lines))
    return "\n\n".join(parts)


def write_markdown(info: dict[str, Any], tq: dict[str, Any] | None, rb: dict[str, Any] | None,
                   speed: dict[str, Any] | None, speed_status: str, sd: dict[str, Any] | None = None) -> Path:
    m = info["machine"]
    lines = [
        "# kgkd benchmark results", "",
        f"- date: {info['date']}",
        (f"- machine: {m['cpu']}, {m['cores']} usable cores (shared with other jobs), torch threads {m['torch_threads']}, "
        f"GPU: {m['gpu']}, torch {m['torch']}, Python {m['python']}"),
        f"- command: `{info['command']}` (scale `{info['scale']}`, seed {info['seed']})",
        "- wall-clock: " + ", ".join(f"{k} {v}" for k, v in info["seconds"].items()),
        "- every number below comes from this one run (`benchmarks/results/*.json`).", "",
    ]  # fmt: skip
    body = []
    if tq is not None:
        body.append(transfer_section(tq))
    if sd is not None:
        body.append(SD.markdown_section(sd))
    body.append(speed_section(speed, speed_status))
    if rb is not None:
        body.append(robustness_section(rb))
    path = C.RESULTS_DIR / "RESULTS.md"
    from kgkd.utils.io import atomic_write_text

    atomic_write_text(path, "\n".join(lines) + "\n" + "\n\n".join(body) + "\n")
    return path


# --------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=C.SCALES, default="full")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for every benchmark (default 1)")
    parser.add_argument("--skip", choices=["transfer_quality", "signal_diagnostics", "robustness", "engine_speed"], action="append", default=[],
                        help="leave a benchmark out (its table is left out too)")
    args = parser.parse_args(argv)
    C.configure_logging()
    C.set_threads(args.threads)
    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": C.machine_info(),
        "command": C.command_line(), "scale": args.scale, "seed": args.seed, "seconds": {},
    }  # fmt: skip
    total = time.perf_counter()
    def timed(name: str, job: Callable[[], Any]) -> Any:
        """Run ``job`` unless ``--skip name``; record its wall-clock seconds."""
        if name in args.skip:
            return None
        t = time.perf_counter()
        result = job()
        info["seconds"][name] = f"{time.perf_counter() - t:.0f} s"
        return result

    tq = timed("transfer_quality", lambda: TQ.run(args.scale, args.seed))
    sd = timed("signal_diagnostics", lambda: SD.run(args.scale, args.seed))
    rb = timed("robustness", lambda: RB.run(args.scale, args.seed))
    speed, status = timed("engine_speed", lambda: run_engine_speed(args.scale, args.seed, args.threads)) or (
        None, "skipped with --skip engine_speed")
    info["seconds"]["total"] = f"{time.perf_counter() - total:.0f} s"
    path = write_markdown(info, tq, rb, speed, status, sd)
    C.write_result("run_all", info)
    print(f"wrote {C.shown(path)}; total {info['seconds']['total']}", flush=True)


if __name__ == "__main__":
    main()
