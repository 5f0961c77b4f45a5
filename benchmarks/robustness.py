"""Robustness row: accuracy under input noise of the KG-distilled student, the teacher ensembles and a label-only student.

Per domain (held-out and source) of the transfer benchmark's first fold, a seeded
test subset is corrupted once and the same corrupted items go to every model:

* text: ``token_dropout`` (each word dropped with p=0.2) and ``typos`` (each letter
  corrupted with p=0.1) from :mod:`kgkd.data.augment`;
* digits: ``gaussian_noise`` (σ=0.3 on 0..1 pixels) and ``blur`` (σ=1 px), applied at
  the domain's native resolution before the collator resizes.

Models: the student distilled under ``kg``, the ``label_only`` student (same
architecture, source labels only, no teachers), and the teacher ensemble under ``kg``
and ``uniform`` weights (every teacher run on the corrupted inputs). Students are
reused from ``transfer_quality`` when it ran with the same scale, seed and config;
otherwise they are trained here. Writes ``benchmarks/results/robustness.json``.

    python benchmarks/robustness.py --scale full --seed 0
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import _common as C
import numpy as np
import torch
import transfer_quality as TQ
from torch.utils.data import DataLoader, Dataset

from kgkd.data.augment import TextAugment, blur, gaussian_noise
from kgkd.distill.evaluation import per_domain_metrics
from kgkd.recipes import pipeline as P
from kgkd.signals.engine_adapter import student_space_probs

#: Test items per domain that are corrupted and scored, per scale.
PER_DOMAIN = {"smoke": 32, "quick": 100, "full": 80}
#: Models scored under noise.
STUDENTS = ("kg", C.LABEL_ONLY)
ENSEMBLES = ("kg", "uniform")


def text_noises(seed: int) -> dict[str, Callable[[Any], Any]]:
    """Corruptions of a text (each draws from its own seeded stream)."""
    return {"token_dropout(p=0.2)": TextAugment("token_dropout", 0.2, seed=seed), "typos(p=0.1)": TextAugment("typos", 0.1, seed=seed)}


def image_noises(seed: int) -> dict[str, Callable[[Any], Any]]:
    """Corruptions of a [1, H, W] image in 0..1."""
    gen = torch.Generator().manual_seed(seed)
    return {"gaussian(std=0.3)": lambda x: gaussian_noise(x, 0.3, gen), "blur(sigma=1)": lambda x: blur(x, 1.0)}


class FrozenItems(Dataset):
    """Items materialised once (so every model sees the very same corrupted inputs)."""

    def __init__(self, items: list[dict[str, Any]], domain_names: Sequence[str]) -> None:
        self.items = items
        self.domain_names = list(domain_names)
        self.labels = np.array([it["label"] for it in items], dtype=np.int64)
        self.domains = np.array([it["domain"] for it in items], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return dict(self.items[index])


def subset_indices(view: Any, per_domain: int, seed: int) -> np.ndarray:
    """Up to ``per_domain`` seeded test indices of every domain (sorted)."""
    rng = np.random.default_rng(seed)
    doms = np.asarray(view.domains)
    keep = []
    for d in np.unique(doms):
        rows = np.flatnonzero(doms == d)
        keep.append(np.sort(rng.choice(rows, size=min(per_domain, len(rows)), replace=False)))
    return np.concatenate(keep)


def corrupted(view: Any, indices: np.ndarray, noise: Callable[[Any], Any] | None, key: str) -> FrozenItems:
    items = []
    for i in indices.tolist():
        item = view[int(i)]
        if noise is not None:
            item[key] = noise(item[key])
        items.append(item)
    return FrozenItems(items, view.domain_names)


@torch.no_grad()
def teacher_probs(ws: P.Workspace, items: FrozenItems, batch_size: int = 64) -> torch.Tensor:
    """Every teacher run on ``items``: probabilities in the student's labels, ``[N, T, C]``."""
    logits = []
    for teacher, collate in zip(ws.teachers, ws.teacher_collates):  # each teacher reads its own inputs
        loader = DataLoader(items, batch_size=batch_size, shuffle=False, collate_fn=collate)
        logits.append(torch.cat([teacher.eval()(batch).logits.float() for batch in loader]))
    return student_space_probs(logits, ws.label_maps)


def ensemble_preds(ws: P.Workspace, name: str, probs: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
    """Argmax of the ensemble under weighting ``name`` (fitted on the source domains only)."""
    weights = torch.zeros(probs.shape[:2])
    for i, d in enumerate(ws.domains):
        rows = domains == i
        if rows.any():
            weights[rows] = P.method(ws, name).sample_weights(d, probs[rows]).float()
    return (weights.unsqueeze(-1) * probs).sum(1).argmax(-1)


def _acc(metrics: dict[str, Any], names: Sequence[str]) -> dict[str, float]:
    return {d: round(float(metrics[d]["accuracy"]), 4) for d in names if d in metrics}


def run_task(task: str, scale: str, seed: int, extra: Sequence[str]) -> dict[str, Any]:
    """Score students and ensembles on clean and corrupted test subsets of every domain."""
    start = time.perf_counter()
    source, target = TQ.TASKS[task]["folds"][0]
    cfg = C.recipe_config(TQ.TASKS[task]["config"], scale, seed,
                          [*TQ.SCALE_OVERRIDES[scale][task], *TQ.fold_overrides(source, target), *extra])  # fmt: skip
    ws, _ = C.prepare(cfg)
    saved_as = f"{task}__{'+'.join(target)}"
    students = C.load_saved_students(saved_as, C.student_meta(task, cfg, scale), STUDENTS)
    reused = students is not None
    if students is None:
        C.log.info("[%s] no matching students from transfer_quality: training %s here", task, ", ".join(STUDENTS))
        students = {name: C.distil_student(ws, name)[0] for name in STUDENTS}
    view = ws.views["test"]
    idx = subset_indices(view, PER_DOMAIN[scale], seed)
    key = "text" if ws.modality == "text" else "image"
    noises: dict[str, Callable[[Any], Any] | None] = {"clean": None}
    noises.update(text_noises(seed) if ws.modality == "text" else image_noises(seed))
    conditions: dict[str, Any] = {}
    for cond, noise in noises.items():
        C.log.info("[%s] scoring under %s", task, cond)
        items = corrupted(view, idx, noise, key)
        labels, domains = torch.as_tensor(items.labels), torch.as_tensor(items.domains)
        rows: dict[str, dict[str, float]] = {}
        for name, student in students.items():
            preds = P.student_predictions(student, items, C.model_collator(student, cfg))
            rows[f"student:{name}"] = _acc(per_domain_metrics(preds, labels, domains, ws.domains), ws.domains)
        if noise is None:  # clean inputs: the teachers' cached outputs on the same items
            probs = torch.stack(P.mapped_probs(ws.caches["test"], ws.label_maps, len(view)), dim=1)[torch.as_tensor(idx)]
        else:
            probs = teacher_probs(ws, items)
        for name in ENSEMBLES:
            preds = ensemble_preds(ws, name, probs, domains)
            rows[f"ensemble:{name}"] = _acc(per_domain_metrics(preds, labels, domains, ws.domains), ws.domains)
        for row in rows.values():
            held = [row[d] for d in target if d in row]
            src = [row[d] for d in source if d in row]
            row["mean_held_out"] = round(float(np.mean(held)), 4) if held else float("nan")
            row["mean_source"] = round(float(np.mean(src)), 4) if src else float("nan")
        conditions[cond] = rows
    return {
        "source_domains": list(source), "target_domains": list(target), "per_domain_items": PER_DOMAIN[scale],
        "n": {d: int((np.asarray(view.domains)[idx] == i).sum()) for i, d in enumerate(ws.domains)},
        "students_reused_from_transfer_quality": reused, "conditions": conditions,
        "seconds": round(time.perf_counter() - start, 1),
    }  # fmt: skip


def format_task(task: str, result: dict[str, Any]) -> str:
    """Rows = model, columns = condition; cells = held-out mean / source mean accuracy %."""
    conds = list(result["conditions"])
    models = list(result["conditions"][conds[0]])
    header = ["model"] + conds
    rows = [[m] + [f"{C.pct(result['conditions'][c][m]['mean_held_out'])} / {C.pct(result['conditions'][c][m]['mean_source'])}"
                   for c in conds] for m in models]  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [f"[{task}] accuracy % under noise: held-out mean / source mean"]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def run(scale: str = "full", seed: int = 0, only: Sequence[str] = ("text", "digits"), extra: Sequence[str] = ()) -> dict[str, Any]:
    """Run the benchmark; write and return the JSON payload."""
    total = time.perf_counter()
    payload = C.new_payload("robustness", scale, seed)
    print(f"robustness: scale={scale} seed={seed} tasks={','.join(only)}", flush=True)
    for task in only:
        payload["tasks"][task] = run_task(task, scale, seed, extra)
        print(format_task(task, payload["tasks"][task]), flush=True)
    return C.finish(payload, total)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = C.benchmark_parser(__doc__, TQ.TASKS, "seed of the recipe, the test subsets and the noise",
                                "extra recipe override (must match transfer_quality's to reuse its students)")
    args = C.parse_and_setup(parser, argv)
    return run(args.scale, args.seed, args.only or list(TQ.TASKS), args.overrides)


if __name__ == "__main__":
    main()
