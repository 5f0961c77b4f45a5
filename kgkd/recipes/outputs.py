"""The run folder: the saved student, ``metrics.json``, plots and the weighted graph."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from kgkd.recipes.config import config_to_dict
from kgkd.recipes.evaluation import mean_accuracy
from kgkd.recipes.workspace import Stopwatch, Workspace
from kgkd.utils.io import atomic_write_json

__all__ = ["history_summary", "write_outputs"]


def write_outputs(ws: Workspace, evaluation: dict[str, Any], clock: Stopwatch, total: float) -> dict[str, Path]:
    """Save the student, ``metrics.json``, plots and weighted graph into ``ws.out``; return their paths."""
    from kgkd.recipes import report

    cfg, out = ws.cfg, ws.out
    student_dir = ws.student.save_pretrained(out / "student")
    atomic_write_json(student_dir / "kgkd_recipe.json", {
        "recipe": cfg.recipe, "name": cfg.name, "modality": ws.modality, "domains": ws.domains,
        "held_out": ws.held_out, "label_set": ws.label_set, "label_names": list(ws.student_labels),
        "max_length": cfg.data.max_length, "image_size": cfg.data.image_size, "graph": "graph.ttl",
    })  # fmt: skip
    ws.kg.serialize(student_dir / "graph.ttl")  # the student folder is self-contained
    names = [t.name for t in ws.teachers]
    assert ws.weight_table is not None
    weights = {d: {t: round(float(ws.weight_table[i, j]), 6) for j, t in enumerate(names)} for i, d in enumerate(ws.domains)}
    clock.timings["total"] = round(time.perf_counter() - total, 3)
    domains = evaluation["domains"]
    metrics: dict[str, Any] = {
        "name": cfg.name,
        "recipe": cfg.recipe,
        "label_set": ws.label_set,
        "teachers": names,
        "source_domains": list(cfg.data.source_domains),
        "target_domains": ws.held_out,
        **evaluation,
        "summary": {
            "student_mean_acc_target": mean_accuracy(domains, {"target"}, "student"),
            "kg_ensemble_mean_acc_target": mean_accuracy(domains, {"target"}, "ensembles", "kg"),
            "student_mean_acc_source": mean_accuracy(domains, {"source"}, "student"),
        },
        "weights": weights,
        "kg_choice": ws.kg_choice,
        "signals_history": {k: v for k, v in (ws.signals.history or {}).items() if k != "curve"},
        "distill_history": history_summary(ws.history),
        "timings": clock.timings,
        "config": config_to_dict(cfg),
    }
    ws.metrics, ws.weights = metrics, weights
    files = report.write_run_outputs(ws, metrics)
    files["student"] = student_dir
    return files


_STEP_KEYS = frozenset({"step", "epoch", "loss", "acc", "lr", "temperature", "alpha", "grad_norm"})


def history_summary(history: Any) -> dict[str, Any]:
    """Steps, first/last loss, epochs and per-epoch means of the loss's own terms of an engine ``History``."""
    if history is None:
        return {}
    epochs = getattr(history, "epochs", None)
    losses = history.losses() if hasattr(history, "losses") else []
    # per-epoch means of the loss's own terms (kd, ce, feature, ...), in epoch order
    sums: dict[str, dict[int, list[float]]] = {}
    for step in getattr(history, "steps", []):
        for key, value in step.items():
            if key not in _STEP_KEYS:
                sums.setdefault(key, {}).setdefault(int(step.get("epoch", 0)), []).append(float(value))
    terms = {k: [round(float(np.mean(v[e])), 6) for e in sorted(v)] for k, v in sums.items()}
    return {"steps": len(losses), "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None, "epochs": epochs, "terms_by_epoch": terms}
