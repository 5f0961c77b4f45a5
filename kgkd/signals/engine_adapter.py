"""One home for turning a fitted weighting method into what the distillation engine reads.

A method of :data:`kgkd.signals.WEIGHTINGS` (an :class:`EnsembleWeighting`) weights samples
from teacher probabilities; the engine wants a
:class:`~kgkd.distill.weighting.TeacherWeighting` — the tensor contract
``(domain ids [B], teacher logits) -> [B, T]``. :func:`engine_weighting` makes one from any
method, :func:`domain_table` gives the ``[D, T]`` per-domain weights a method distils with
(for reports) and :func:`decision` what the method chose and why. A method may provide
its own ``engine_weighting(domain_names, label_maps)`` / ``domain_table(kg, domains)``
hooks; callers never branch on a method's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from kgkd.distill.weighting import TeacherWeighting
from kgkd.errors import ConfigError
from kgkd.labels import LabelMap
from kgkd.signals.baselines import EnsembleWeighting

__all__ = [
    "FittedSignalsMethod",
    "MethodWeighting",
    "decision",
    "domain_table",
    "engine_weighting",
    "student_space_probs",
]


def student_space_probs(teacher_logits: Sequence[Tensor], label_maps: Sequence[LabelMap]) -> Tensor:
    """Teacher softmaxes moved to the student's labels and renormalised: ``[B, T, C_student]``."""
    probs = []
    for logits, lmap in zip(teacher_logits, label_maps):
        p = torch.softmax(logits.float(), dim=-1) @ lmap.matrix(device=logits.device)
        probs.append(p / p.sum(-1, keepdim=True).clamp_min(1e-12))
    return torch.stack(probs, dim=1)


class MethodWeighting(TeacherWeighting):
    """A fitted ensemble method as the engine's ``TeacherWeighting`` (the default adapter).

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


class FittedSignalsMethod(EnsembleWeighting):
    """Already fitted KG-GNN signals (:class:`~kgkd.signals.FittedSignals`) as the ``kg_gnn`` method.

    A recipe's signals stage fits the GNN once; this wraps that fit so ensembles and the
    engine use it without a second fit. The engine gets the signals' own
    :class:`~kgkd.signals.weighting.KGWeighting` (table, gate and shrinkage).
    """

    #: The ``WEIGHTINGS`` name this stands for.
    name: ClassVar[str] = "kg_gnn"

    def __init__(self, signals: Any) -> None:
        super().__init__()
        self.fitted = signals
        self.teachers = list(signals.teachers)

    def sample_weights(self, domain: str, probs: Tensor, features: Tensor | None = None) -> Tensor:
        return self.fitted.sample_weights(domain, probs)

    def engine_weighting(self, domain_names: Sequence[str], label_maps: Sequence[LabelMap]) -> TeacherWeighting:
        return self.fitted.as_weighting(list(domain_names), label_maps)

    def domain_table(self, kg: Any, domains: Sequence[str]) -> Tensor:
        return self.fitted.weights(list(domains)).detach().float()


def engine_weighting(method: EnsembleWeighting, domain_names: Sequence[str], label_maps: Sequence[LabelMap]) -> TeacherWeighting:
    """The engine's ``TeacherWeighting`` for a fitted ``method`` (its own hook, else :class:`MethodWeighting`)."""
    hook = getattr(method, "engine_weighting", None)
    if hook is not None:
        return hook(domain_names, label_maps)
    return MethodWeighting(method, domain_names, label_maps)


def domain_table(method: EnsembleWeighting, kg: Any, domains: Sequence[str]) -> Tensor | None:
    """``[D, T]`` weights ``method`` gives each of ``domains``; None when it weights per sample.

    The safe ``kg`` weighting's table is rebuilt from its saved choice (uniform or graph-prior
    rule per domain), so a report shows the weights the student is distilled with.
    """
    hook = getattr(method, "domain_table", None)
    if hook is not None:
        return hook(kg, domains)
    from kgkd.signals.safe import SafeKGWeighting, domain_weights_from_choice

    if isinstance(method, SafeKGWeighting):
        return domain_weights_from_choice(kg, method.to_json(), list(domains))
    return None


def decision(method: EnsembleWeighting) -> dict[str, Any] | None:
    """What ``method`` chose on the sources and why (the safe ``kg``'s decision), or None."""
    chosen = getattr(method, "decision", None)
    return chosen if isinstance(chosen, dict) else None
