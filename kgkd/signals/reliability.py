"""Measured teacher reliability per (domain, teacher): accuracy, NLL and ECE.

Teacher probabilities are always in the *domain's* (student's) label space —
:func:`collect_teacher_probs` moves each teacher's probabilities there with its
:class:`~kgkd.labels.LabelMap` and renormalises over the labels it covers.

Layout used across :mod:`kgkd.signals`: ``probs_by_domain[domain][teacher]`` is a
``Tensor[N, C]`` of probabilities and ``labels_by_domain[domain]`` a ``Tensor[N]``
(same N for every teacher of that domain).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from kgkd.errors import SignalError
from kgkd.labels import LabelMap
from kgkd.signals.mixture import label_nll

ProbsByDomain = Mapping[str, Mapping[str, Tensor]]
LabelsByDomain = Mapping[str, Tensor]


@dataclass
class ReliabilityTable:
    """Accuracy / NLL / ECE of each teacher on each domain (NaN where not measured)."""

    domains: list[str]
    teachers: list[str]
    accuracy: Tensor  # [D, T]
    nll: Tensor  # [D, T]
    ece: Tensor  # [D, T]
    counts: Tensor  # [D] samples measured per domain

    def get(self, metric: str, domain: str, teacher: str) -> float:
        """One value, e.g. ``table.get("accuracy", "mnist", "usps")``."""
        if metric not in ("accuracy", "nll", "ece"):
            raise SignalError(f"unknown reliability metric '{metric}'; use accuracy, nll or ece")
        return float(getattr(self, metric)[self.domains.index(domain), self.teachers.index(teacher)])

    def measured(self) -> Tensor:
        """Bool [D, T]: pairs with a measurement."""
        return ~torch.isnan(self.accuracy)

    def to_json(self) -> dict[str, Any]:
        def rows(t: Tensor) -> list[list[float | None]]:
            return [[None if math.isnan(v) else round(float(v), 6) for v in row] for row in t.tolist()]

        return {
            "domains": self.domains,
            "teachers": self.teachers,
            "accuracy": rows(self.accuracy),
            "nll": rows(self.nll),
            "ece": rows(self.ece),
            "counts": [int(c) for c in self.counts.tolist()],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ReliabilityTable:
        def tens(rows: list[list[float | None]]) -> Tensor:
            return torch.tensor([[float("nan") if v is None else v for v in r] for r in rows], dtype=torch.float32)

        return cls(list(d["domains"]), list(d["teachers"]), tens(d["accuracy"]), tens(d["nll"]), tens(d["ece"]),
                   torch.tensor(d["counts"], dtype=torch.long))


def expected_calibration_error(probs: Tensor, labels: Tensor, bins: int = 15) -> float:
    """Top-label ECE with ``bins`` equal-width confidence bins."""
    conf, pred = probs.max(-1)
    correct = (pred == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        inb = (conf > lo) & (conf <= hi)
        if inb.any():
            ece += inb.float().mean().item() * abs(conf[inb].mean().item() - correct[inb].mean().item())
    return ece


def check_probs(probs_by_domain: ProbsByDomain, labels_by_domain: LabelsByDomain | None = None) -> None:
    """Raise :class:`SignalError` on ragged or non-probability inputs."""
    for d, by_t in probs_by_domain.items():
        if not by_t:
            raise SignalError(f"domain '{d}' has no teacher probabilities; collect them with collect_teacher_probs")
        shapes = {t: tuple(p.shape) for t, p in by_t.items()}
        if len(set(shapes.values())) != 1 or any(len(s) != 2 for s in shapes.values()):
            raise SignalError(f"teacher probabilities on domain '{d}' must all be [N, C] of one shape, got {shapes}")
        for t, p in by_t.items():
            if not torch.isfinite(p).all() or (p < 0).any():
                raise SignalError(f"teacher '{t}' on domain '{d}': probabilities hold NaN/inf/negative values")
            empty = int((p.sum(-1) <= 1e-6).sum())
            if empty:
                raise SignalError(
                    f"teacher '{t}' on domain '{d}': {empty} of {p.size(0)} rows put no probability on any of the "
                    "domain's labels, so its reliability cannot be measured; check its label map "
                    "(kg.label_map(teacher, label_set)) or leave the teacher out"
                )
        if labels_by_domain is not None and d in labels_by_domain:
            n = next(iter(shapes.values()))[0]
            if labels_by_domain[d].numel() != n:
                raise SignalError(
                    f"domain '{d}': {labels_by_domain[d].numel()} labels but {n} teacher predictions; they must align"
                )


def measure_reliability(
    teacher_probs_by_domain: ProbsByDomain,
    labels_by_domain: LabelsByDomain,
    teachers: Sequence[str] | None = None,
    bins: int = 15,
) -> ReliabilityTable:
    """Accuracy, NLL and ECE of every teacher on every domain that has labels."""
    check_probs(teacher_probs_by_domain, labels_by_domain)
    domains = [d for d in teacher_probs_by_domain if d in labels_by_domain]
    if not domains:
        raise SignalError(
            "no domain has both teacher probabilities and labels; reliability needs labelled domains "
            f"(got probabilities for {sorted(teacher_probs_by_domain)}, labels for {sorted(labels_by_domain)})"
        )
    names = list(teachers) if teachers is not None else sorted({t for d in domains for t in teacher_probs_by_domain[d]})
    shape = (len(domains), len(names))
    acc, nll, ece = (torch.full(shape, float("nan")) for _ in range(3))
    counts = torch.zeros(len(domains), dtype=torch.long)
    for i, d in enumerate(domains):
        y = labels_by_domain[d].long()
        counts[i] = y.numel()
        for j, t in enumerate(names):
            p = teacher_probs_by_domain[d].get(t)
            if p is None or y.numel() == 0:
                continue
            acc[i, j] = (p.argmax(-1) == y).float().mean()
            nll[i, j] = label_nll(p, y)
            ece[i, j] = expected_calibration_error(p, y, bins)
    return ReliabilityTable(domains, names, acc, nll, ece, counts)


@torch.no_grad()
def collect_teacher_probs(
    teachers: Sequence[torch.nn.Module],
    dataset: Iterable[Any],
    collate: Callable[[list[Any]], dict[str, Any]],
    label_maps: Sequence[LabelMap],
    batch_size: int = 128,
    show_progress: bool = False,
) -> tuple[dict[str, Tensor], Tensor]:
    """Run ``teachers`` over ``dataset``; return ``({teacher_name: probs[N, C_student]}, labels[N])``.

    Each teacher's softmax is moved into the student's label space with its label
    map and renormalised over the student labels that teacher covers.
    """
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    if len(teachers) != len(label_maps):
        raise SignalError(f"collect_teacher_probs got {len(teachers)} teachers but {len(label_maps)} label maps")
    names = [str(getattr(t, "name", f"teacher{i}")) for i, t in enumerate(teachers)]
    out: dict[str, list[Tensor]] = {n: [] for n in names}
    labels: list[Tensor] = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)  # type: ignore[arg-type]
    for batch in tqdm(loader, desc="teacher probabilities", disable=not show_progress):
        labels.append(batch["labels"].long())
        for name, teacher, lmap in zip(names, teachers, label_maps):
            teacher.eval()
            logits = teacher(batch).logits.float()
            if logits.size(-1) != lmap.num_teacher_labels:
                raise SignalError(
                    f"teacher '{name}' predicts {logits.size(-1)} labels but its label map has {lmap.num_teacher_labels}; "
                    "rebuild the label map with kg.label_map(teacher, student_label_set)"
                )
            out[name].append(lmap.logits_to_student(logits))
    if not labels:
        raise SignalError("collect_teacher_probs got an empty dataset")
    return {n: torch.cat(v) for n, v in out.items()}, torch.cat(labels)
