"""``multi_teacher_kd``: several teachers, weighted per sample, different label sets.

Each teacher's softmax at temperature T is moved into the student's label space
with its ``LabelMap.matrix()`` and renormalised over the student labels it
covers (knowledge amalgamation: a 10-label teacher can teach a 20-label student).
Two objectives combine teachers (the choice is debated, e.g. composer #1819):

``"mixture"`` (default)
    ``KL(Σ_t w_t p̃_t ‖ q̃)``: one target distribution, the weighted mixture of the
    teachers; the student ``q̃`` is renormalised over the union of labels covered by
    the teachers with non-zero weight for that sample. The student must also match
    how the weights split probability mass between teachers with disjoint labels.
``"sum"``
    ``Σ_t w_t KL(p̃_t ‖ q̃_t)``: one KL per teacher, the student ``q̃_t`` renormalised
    over teacher t's labels only; each teacher constrains only the relative
    probabilities inside its own labels, never the mass split between teachers.

With one teacher both are equal. With teachers sharing one label set they differ
by ``Σ_t w_t KL(p_t ‖ m)`` (the weighted Jensen-Shannon spread of the teachers,
``sum ≥ mixture``), a term that does not depend on the student: values differ,
gradients coincide. With different label sets the gradients differ too.
Both are multiplied by T² (Hinton et al.) so gradient size does not shrink with T.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from kgkd.distill.context import LossContext
from kgkd.distill.losses.base import LOSSES, DistillLoss
from kgkd.distill.losses.functional import kl_per_sample, masked_log_softmax, teacher_probs
from kgkd.errors import ConfigError, DistillError

OBJECTIVES = ("mixture", "sum")


def context_temperature(ctx: LossContext) -> float:
    """The context's temperature, scheduled by the engine (its only owner); must be > 0."""
    temperature = float(ctx.temperature)
    if not temperature > 0:
        raise DistillError(
            f"distillation temperature must be > 0, got {temperature}; set it with the engine's "
            "temperature schedule (EngineConfig.temperature / distill.engine.temperature)"
        )
    return temperature


def label_map_for(ctx: LossContext, index: int):
    """Teacher ``index``'s label map, or ``None`` when the context carries none."""
    if not ctx.label_maps:
        return None
    if len(ctx.label_maps) != ctx.num_teachers:
        raise DistillError(
            f"LossContext has {len(ctx.label_maps)} label maps for {ctx.num_teachers} teachers; "
            "give exactly one LabelMap per teacher (or none when all share the student's labels)"
        )
    return ctx.label_maps[index]


@LOSSES.register("multi_teacher_kd")
class MultiTeacherKDLoss(DistillLoss):
    """Weighted multi-teacher KD across label spaces (see module docstring).

    The temperature is ``ctx.temperature``, scheduled by the engine.

    Args:
        objective: ``"mixture"`` (default) or ``"sum"``.
    """

    def __init__(self, objective: Literal["mixture", "sum"] = "mixture") -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ConfigError(
                f"multi_teacher_kd: objective must be one of {OBJECTIVES}, got '{objective}'"
            )
        self.objective = objective

    def per_sample(self, ctx: LossContext) -> Tensor:
        temperature = context_temperature(ctx)
        weights = ctx.weights().float()
        student = ctx.student.logits
        num_labels = student.shape[-1]
        probs, covers = [], []
        for t, out in enumerate(ctx.teachers):
            p, covered = teacher_probs(
                out.logits, num_labels, temperature, label_map_for(ctx, t), f"teacher {t}"
            )
            probs.append(p)
            covers.append(covered)
        if self.objective == "mixture":
            mixture = sum(weights[:, t : t + 1] * p for t, p in enumerate(probs))
            active = torch.stack(
                [(weights[:, t : t + 1] > 0) & c.unsqueeze(0) for t, c in enumerate(covers)]
            ).any(dim=0)
            loss = kl_per_sample(mixture, masked_log_softmax(student, active, temperature))
        else:
            loss = sum(
                weights[:, t]
                * kl_per_sample(p, masked_log_softmax(student, covers[t], temperature))
                for t, p in enumerate(probs)
            )
        return loss * temperature**2
