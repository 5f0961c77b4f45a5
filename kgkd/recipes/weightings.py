"""Recipe glue for teacher weightings: fit every compared method once, use it for ensembles and the engine.

``kgkd.signals`` offers the methods (``WEIGHTINGS``: uniform, confidence, best_single,
oracle, kg, kg_gate, no_graph) as label-free ``sample_weights(domain, probs [N,T,C])``.
The engine wants a ``TeacherWeighting`` module ``(domain ids [B], teacher logits) -> [B,T]``;
:class:`MethodWeighting` adapts one to the other, so a student can be distilled under
any method, not just evaluated with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from kgkd.distill.weighting import TeacherWeighting
from kgkd.errors import ConfigError
from kgkd.labels import LabelMap
from kgkd.signals.baselines import WEIGHTINGS, EnsembleWeighting

__all__ = ["FittedKG", "MethodWeighting", "check_method_names", "fit_method", "student_space_probs"]

#: Methods fitted through the graph (they take the signal options).
KG_METHODS = frozenset({"kg", "kg_gnn", "kg_gnn_gate", "no_graph", "graph_prior"})


class FittedKG(EnsembleWeighting):
    """The run's already fitted KG signals as an ensemble method (no second fit)."""

    def __init__(self, signals: Any) -> None:
        super().__init__()
        self.fitted = signals
        self.teachers = list(signals.teachers)

    def sample_weights(self, domain: str, probs: Tensor) -> Tensor:
        return self.fitted.sample_weights(domain, probs)


def check_method_names(names: Sequence[str], key: str) -> None:
    """Raise a ConfigError (with did-you-mean) for a name that is no weighting method."""
    for name in names:
        try:
            WEIGHTINGS.get(name)
        except ConfigError as exc:
            raise ConfigError(f"{key}: {exc}") from None


def fit_method(
    name: str,
    kg: Any,
    probs: Mapping[str, Mapping[str, Tensor]],
    labels: Mapping[str, Tensor],
    source_domains: Sequence[str],
    teachers: Sequence[str],
    options: Mapping[str, Any],
    target: str | None = None,
) -> EnsembleWeighting:
    """Fit method ``name`` on the source domains' labels (the oracle also gets ``target``'s)."""
    cls = WEIGHTINGS.get(name)
    method = cls(**dict(options)) if name in KG_METHODS else cls()
    given = {d: labels[d] for d in source_domains}
    if cls.uses_target_labels and target is not None:
        given[target] = labels[target]
    return method.fit(kg, probs, given, list(source_domains), list(teachers), target=target)


def student_space_probs(teacher_logits: Sequence[Tensor], label_maps: Sequence[LabelMap]) -> Tensor:
    """Teacher softmaxes moved to the student's labels and renormalised: ``[B, T, C_student]``."""
    probs = []
    for logits, lmap in zip(teacher_logits, label_maps):
        p = torch.softmax(logits.float(), dim=-1) @ lmap.matrix(device=logits.device)
        probs.append(p / p.sum(-1, keepdim=True).clamp_min(1e-12))
    return torch.stack(probs, dim=1)


class MethodWeighting(TeacherWeighting):
    """A fitted ensemble method as the engine's ``TeacherWeighting``.

    Args:
        method: a fitted ``EnsembleWeighting``.
        domain_names: name of each domain id the engine will see.
        label_maps: one per teacher (teacher labels → student labels).
    """

    def __init__(self, method: EnsembleWeighting, domain_names: Sequence[str], label_maps: Sequence[LabelMap]) -> None:
        super().__init__(len(label_maps))
        self.method = method
        self.domain_names = list(domain_names)
        self.label_maps = list(label_maps)

    def forward(self, domain: Tensor, teacher_logits: Sequence[Tensor] = ()) -> Tensor:
        self.check_inputs(domain, teacher_logits)
        if not teacher_logits:
            raise ConfigError(f"{type(self.method).__name__} weights samples by the teachers' outputs; pass them")
        probs = self.method.calibrated(student_space_probs(teacher_logits, self.label_maps).cpu())
        ids = domain.long().cpu()
        weights = torch.empty(ids.numel(), self.num_teachers)
        for d in ids.unique().tolist():
            rows = ids == d
            weights[rows] = self.method.sample_weights(self.domain_names[d], probs[rows]).float()
        return weights.to(domain.device)
