"""``ce``: cross-entropy on the labelled samples of a batch (labels ``-1`` are skipped)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from kgkd.distill.context import LossContext
from kgkd.distill.losses.base import LOSSES, DistillLoss, zero_loss
from kgkd.errors import ConfigError, DistillError


def ce_per_sample(ctx: LossContext, label_smoothing: float = 0.0) -> tuple[Tensor, Tensor]:
    """Per-sample cross-entropy ``[B]`` (0 for unlabelled rows) and the labelled mask ``[B]``."""
    logits = ctx.student.logits
    if ctx.labels is None:
        mask = torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)
        return logits.sum(dim=-1) * 0.0, mask
    labels = ctx.labels.to(logits.device).long()
    mask = labels >= 0
    num_classes = logits.shape[-1]
    bad = labels[(labels < -1) | (labels >= num_classes)]
    if bad.numel():
        raise DistillError(
            f"label {int(bad[0])} is outside the student's {num_classes} classes (0..{num_classes - 1}, "
            "-1 for unlabelled); check the dataset's labels against the student's label set"
        )
    loss = F.cross_entropy(
        logits.float(), labels.clamp_min(0), reduction="none", label_smoothing=label_smoothing
    )
    return loss * mask, mask


@LOSSES.register("ce")
class CELoss(DistillLoss):
    """Mean cross-entropy over labelled samples; 0 (still differentiable) if none is labelled.

    Args:
        label_smoothing: as in ``torch.nn.functional.cross_entropy``.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"ce: label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def per_sample(self, ctx: LossContext) -> Tensor:
        return ce_per_sample(ctx, self.label_smoothing)[0]

    def forward(self, ctx: LossContext) -> Tensor:
        loss, mask = ce_per_sample(ctx, self.label_smoothing)
        if not mask.any():
            return zero_loss(ctx)
        return loss.sum() / mask.sum()
