"""``combined`` (alias ``kd_ce``): ``α·KD + (1−α)·CE`` on labelled samples, KD alone on unlabelled.

The classic multi-task distillation objective; ``α`` comes from ``ctx.alpha`` (so
the engine can schedule it). The KD part is any per-sample loss, by default
``multi_teacher_kd``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from kgkd.distill.context import LossContext
from kgkd.distill.losses.base import LOSSES, DistillLoss, as_float, as_loss, has_per_sample
from kgkd.distill.losses.ce import ce_per_sample
from kgkd.errors import ConfigError, DistillError


@LOSSES.register("combined")
@LOSSES.register("kd_ce")
class CombinedLoss(DistillLoss):
    """Per sample: ``α·kd + (1−α)·ce`` if labelled, else ``kd``; averaged over the batch.

    Args:
        kd: the distillation loss (name, ``{"name": ..., **options}`` or instance).
        label_smoothing: for the CE part.

    After each call ``last_terms`` holds the batch means of ``kd`` and ``ce``.
    """

    def __init__(
        self,
        kd: str | Mapping[str, Any] | DistillLoss = "multi_teacher_kd",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.kd = as_loss(kd, "combined.kd")
        if not has_per_sample(self.kd):
            raise ConfigError(
                f"combined.kd: loss {type(self.kd).__name__} has no per-sample form; use a logit loss "
                "(kd, multi_teacher_kd, feature) or combine it through weighted_sum"
            )
        self.label_smoothing = label_smoothing
        self.last_terms: dict[str, float] = {}

    def per_sample(self, ctx: LossContext) -> Tensor:
        alpha = float(ctx.alpha)
        if not 0.0 <= alpha <= 1.0:
            raise DistillError(
                f"combined loss: alpha must be in [0, 1], got {alpha}; set it with the engine's alpha "
                "schedule (EngineConfig.alpha / distill.engine.alpha)"
            )
        kd = self.kd.per_sample(ctx)
        ce, labelled = ce_per_sample(ctx, self.label_smoothing)
        self.last_terms = {
            "kd": as_float(kd.mean()),
            "ce": as_float(ce.sum() / labelled.sum()) if labelled.any() else 0.0,
        }
        return torch.where(labelled, alpha * kd + (1.0 - alpha) * ce, kd)
