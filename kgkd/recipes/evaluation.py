"""Per-domain test evaluation of a distilled student next to every compared ensemble and teacher."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from kgkd.recipes.stages import mapped_probs, method, student_collator
from kgkd.recipes.workspace import Workspace

__all__ = ["evaluate", "mean_accuracy", "student_predictions"]


@torch.no_grad()
def student_predictions(student: Any, dataset: Any, collate: Any, batch_size: int = 128) -> Tensor:
    """Argmax predictions of ``student`` over ``dataset`` (in order)."""
    from torch.utils.data import DataLoader

    student.eval()
    preds = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
        preds.append(student(batch).logits.argmax(-1))
    return torch.cat(preds)


def evaluate(ws: Workspace) -> dict[str, Any]:
    """Per-domain test metrics: student, ensembles under each weighting, each single teacher."""
    from kgkd.distill.evaluation import per_domain_metrics

    test = ws.views["test"]
    labels, domains = torch.as_tensor(test.labels), torch.as_tensor(test.domains)
    names = [t.name for t in ws.teachers]
    collate = student_collator(ws.student, ws.cfg)  # whichever student ws holds reads its own inputs
    student = per_domain_metrics(student_predictions(ws.student, test, collate), labels, domains, ws.domains)
    probs = mapped_probs(ws.caches["test"], ws.label_maps, len(test))
    stacked = torch.stack(probs, dim=1)  # [N, T, C]
    ensembles: dict[str, dict[str, Any]] = {}
    for name in ["kg", *[b for b in ws.cfg.signals.baselines if b != "kg"]]:
        mixture = torch.zeros(stacked.shape[0], stacked.shape[2])
        for i, d in enumerate(ws.domains):
            rows = domains == i
            if bool(rows.any()):
                mixture[rows] = method(ws, name, target=d).mixture(d, stacked[rows]).float()
        preds = mixture.argmax(-1)
        ensembles[name] = per_domain_metrics(preds, labels, domains, ws.domains)
    singles = {t: per_domain_metrics(p.argmax(-1), labels, domains, ws.domains) for t, p in zip(names, probs)}
    report: dict[str, Any] = {}
    for d in ws.domains:
        report[d] = {
            "role": "target" if d in ws.held_out else "source",
            # no labelled test sample (a user domain without labels): no accuracy anywhere below
            "unlabelled": not bool(((domains == ws.domains.index(d)) & (labels >= 0)).any()),
            "n": int((domains == ws.domains.index(d)).sum()),
            "student": student.get(d, {}),
            "ensembles": {k: v.get(d, {}) for k, v in ensembles.items()},
            "teachers": {t: v.get(d, {}) for t, v in singles.items()},
        }
    return {
        "domains": report,
        "overall": {"student": student["overall"], **{f"ensemble_{k}": v["overall"] for k, v in ensembles.items()}},
    }


def mean_accuracy(entries: dict[str, Any], roles: set[str], key: str, sub: str | None = None) -> float | None:
    """Mean accuracy of ``entries[*][key][sub]`` over the domains whose role is in ``roles`` (None: none)."""
    vals = []
    for e in entries.values():
        if e["role"] not in roles:
            continue
        block = e[key] if sub is None else e[key].get(sub, {})
        if "accuracy" in block:
            vals.append(block["accuracy"])
    return round(float(np.mean(vals)), 4) if vals else None
