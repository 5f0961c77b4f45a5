"""Evaluation helpers: per-domain metrics, teacher-ensemble predictions, compression report.

All functions take tensors and modules only. Metrics use scikit-learn so that
the numbers match what users compute themselves.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_model
from torch import Tensor, nn

from kgkd.errors import DistillError
from kgkd.labels import LabelMap
from kgkd.models.params import count_parameters  # one parameter count; re-exported here


def per_domain_metrics(
    preds: Tensor | np.ndarray,
    labels: Tensor | np.ndarray,
    domains: Tensor | np.ndarray,
    domain_names: Sequence[str],
) -> dict[str, dict[str, float]]:
    """Accuracy and macro-F1 overall and per domain; samples labelled -1 are left out.

    Returns ``{"overall": {"accuracy", "macro_f1", "n"}, "<domain>": {...}, ...}``
    (a domain with no labelled sample is absent).
    """
    p, y, d = (
        np.asarray(a.detach().cpu() if isinstance(a, Tensor) else a)
        for a in (preds, labels, domains)
    )
    if not p.shape == y.shape == d.shape:
        raise DistillError(
            f"per_domain_metrics: preds {p.shape}, labels {y.shape} and domains {d.shape} must have the same shape"
        )
    keep = y >= 0
    p, y, d = p[keep], y[keep], d[keep]
    out: dict[str, dict[str, float]] = {"overall": _scores(p, y)}
    for i, name in enumerate(domain_names):
        rows = d == i
        if rows.any():
            out[name] = _scores(p[rows], y[rows])
    unknown = sorted(set(np.unique(d).tolist()) - set(range(len(domain_names))))
    if unknown:
        raise DistillError(
            f"per_domain_metrics: domain ids {unknown} have no name in domain_names={list(domain_names)}; "
            "pass one name per domain of the dataset"
        )
    return out


def _scores(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score  # heavy import, only when scoring

    if len(y) == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan"), "n": 0.0}
    return {
        "accuracy": float(accuracy_score(y, p)),
        "macro_f1": float(f1_score(y, p, average="macro", zero_division=0)),
        "n": float(len(y)),
    }


def ensemble_probs(
    teacher_logits: Sequence[Tensor],
    weights: Tensor,
    label_maps: Sequence[LabelMap],
    temperature: float = 1.0,
) -> Tensor:
    """Weighted mixture of teacher distributions in the student's label space ``[B, C_s]``.

    Each teacher's softmax (at ``temperature``) is moved to the student's labels with
    ``LabelMap.logits_to_student`` (renormalised over the labels it covers, like the
    losses and the recipes' ensembles) and mixed with the per-sample weights ``[B, T]``.
    """
    if len(teacher_logits) != len(label_maps):
        raise DistillError(
            f"{len(teacher_logits)} teacher outputs but {len(label_maps)} label maps; give one per teacher"
        )
    mix: Tensor | None = None
    for t, (logits, lmap) in enumerate(zip(teacher_logits, label_maps)):
        if logits.shape[-1] != lmap.num_teacher_labels:
            raise DistillError(
                f"teacher '{lmap.teacher}' returned {logits.shape[-1]} logits but its label map lists "
                f"{lmap.num_teacher_labels} teacher labels; rebuild the label map for this teacher"
            )
        p = lmap.logits_to_student(logits, temperature)
        term = weights[:, t : t + 1].to(p) * p
        mix = term if mix is None else mix + term
    assert mix is not None
    return mix


# ------------------------------------------------------------------ compression
def size_on_disk(module: nn.Module) -> int:
    """Bytes of the module's weights saved as safetensors (written to a temp folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.safetensors"
        save_model(module, str(path))
        return path.stat().st_size


@torch.no_grad()
def measure_latency(
    models: Sequence[nn.Module], batch: Mapping[str, Any], repeats: int = 10, warmup: int = 2,
    clock: str = "wall",
) -> dict[str, float]:
    """Median ms per batch and samples/s of running all ``models`` on ``batch`` in turn.

    ``clock="cpu"`` times with this process's CPU time instead of the wall clock: on shared
    cores other processes then do not count (with one torch thread it is the compute time).
    """
    if clock not in ("wall", "cpu"):
        raise DistillError(f"measure_latency: clock must be 'wall' or 'cpu', got {clock!r}")
    timer = time.perf_counter if clock == "wall" else time.process_time
    n = int(next(v for v in batch.values() if isinstance(v, Tensor)).shape[0])
    for m in models:
        m.eval()
    times = []
    for i in range(warmup + repeats):
        start = timer()
        for m in models:
            m(batch)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(timer() - start)
    median = statistics.median(times)
    return {"latency_ms": 1000.0 * median, "throughput": n / median}


def batch_rows(batch: Mapping[str, Any], n: int) -> dict[str, Any]:
    """The first ``n`` rows of every tensor in ``batch`` (a batch-1 probe from a bigger batch)."""
    return {k: v[:n] if isinstance(v, Tensor) else v for k, v in batch.items()}


def profile(
    models: Sequence[nn.Module], example_batch: Mapping[str, Any], repeats: int = 10, clock: str = "wall"
) -> dict[str, float]:
    """Parameters, safetensors size (MB) and CPU items/s at batch 1 and at ``example_batch``'s size.

    ``throughput``/``latency_ms`` are the full-batch figures (as :func:`measure_latency`),
    ``items_per_s_b1``/``latency_ms_b1`` those of the batch's first row alone (``clock`` as
    :func:`measure_latency`).
    """
    full = measure_latency(models, example_batch, repeats=repeats, clock=clock)
    one = measure_latency(models, batch_rows(example_batch, 1), repeats=repeats, clock=clock)
    return {
        "params": float(sum(count_parameters(m) for m in models)),
        "size_mb": sum(size_on_disk(m) for m in models) / 2**20,
        **full,
        "items_per_s_b1": one["throughput"],
        "latency_ms_b1": one["latency_ms"],
    }


def compression_report(
    student: nn.Module,
    teachers: Sequence[nn.Module],
    example_batch: Mapping[str, Any],
    repeats: int = 10,
) -> dict[str, dict[str, float]]:
    """Parameters, safetensors size, latency and throughput (batch 1 and full batch): student vs the ensemble.

    Models run where they are (keep them on CPU for the CPU numbers). Returns
    ``{"student": {...}, "ensemble": {...}, "ratio": {params, size, speedup, speedup_b1}}``.
    """
    if not teachers:
        raise DistillError(
            "compression_report needs at least one teacher to compare the student with"
        )
    rows: dict[str, dict[str, float]] = {
        "student": profile([student], example_batch, repeats),
        "ensemble": profile(list(teachers), example_batch, repeats),
    }
    s, e = rows["student"], rows["ensemble"]
    rows["ratio"] = {
        "params": e["params"] / max(s["params"], 1.0),
        "size": e["size_mb"] / max(s["size_mb"], 1e-12),
        "speedup": s["throughput"] / max(e["throughput"], 1e-12),
        "speedup_b1": s["items_per_s_b1"] / max(e["items_per_s_b1"], 1e-12),
    }
    return rows
