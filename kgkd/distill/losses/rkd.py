"""``rkd``: relational (structure) distillation, after Park et al., "Relational KD" (2019).

Instead of matching features one sample at a time, the student matches the
*relations* between the samples of a batch in the teacher's embedding space:

- distance term: pairwise Euclidean distances, each normalised by its mean over
  the batch, compared with smooth-L1;
- angle term: cosines of the angles formed by every triplet of embeddings,
  compared with smooth-L1.

Both are invariant to rotations, translations (and, for the normalised distances,
scale) of either embedding space, so student and teacher widths may differ and
no projector is needed. Each teacher's term is weighted by the batch mean of its
alignment weight (``ctx.alignment_weights``, else ``ctx.teacher_weights``). The
angle term builds a ``[B, B, B]`` tensor: keep batches moderate (≤ 256).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from kgkd.distill.context import LossContext
from kgkd.distill.losses.base import LOSSES, DistillLoss, zero_loss
from kgkd.distill.losses.feature import get_feature
from kgkd.errors import ConfigError, DistillError


def normalised_distances(x: Tensor) -> Tensor:
    """Pairwise distances ``[B, B]`` of rows of ``x`` divided by their mean off-diagonal value."""
    d = torch.cdist(x, x)
    off = ~torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    return d / d[off].mean().clamp_min(1e-12)


def triplet_angles(x: Tensor) -> Tensor:
    """``cos ∠(x_i, x_j, x_k)`` at vertex ``j`` for all triplets, shape ``[B, B, B]``."""
    e = F.normalize(x.unsqueeze(0) - x.unsqueeze(1), p=2, dim=2)  # e[j, i] = unit(x_i - x_j)
    return torch.bmm(e, e.transpose(1, 2))


@LOSSES.register("rkd")
class RKDLoss(DistillLoss):
    """Distance + angle relational loss against each teacher.

    Args:
        student_feature: name of the student embedding in ``ctx.student.features``.
        teacher_feature: name of the teacher embedding (defaults to ``student_feature``).
        distance_weight, angle_weight: weights of the two terms (RKD paper: 1 and 2).
        teachers: teacher indices to use (default: all).
    """

    def __init__(
        self,
        student_feature: str = "pooled",
        teacher_feature: str | None = None,
        distance_weight: float = 1.0,
        angle_weight: float = 2.0,
        teachers: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if distance_weight < 0 or angle_weight < 0 or distance_weight + angle_weight == 0:
            raise ConfigError(
                f"rkd: distance_weight and angle_weight must be >= 0 and not both 0, got "
                f"{distance_weight} and {angle_weight}"
            )
        self.student_feature = student_feature
        self.teacher_feature = teacher_feature or student_feature
        self.distance_weight = distance_weight
        self.angle_weight = angle_weight
        self.teacher_ids = None if teachers is None else [int(t) for t in teachers]

    def relation_loss(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Weighted distance + angle loss between two ``[B, *]`` embedding batches."""
        s, t = student.float().flatten(1), teacher.detach().float().flatten(1)
        loss = s.new_zeros(())
        if self.distance_weight:
            loss = loss + self.distance_weight * F.smooth_l1_loss(
                normalised_distances(s), normalised_distances(t)
            )
        if self.angle_weight:
            loss = loss + self.angle_weight * F.smooth_l1_loss(triplet_angles(s), triplet_angles(t))
        return loss

    def forward(self, ctx: LossContext) -> Tensor:
        if ctx.batch_size < 2:
            return zero_loss(ctx)
        ids = list(range(ctx.num_teachers)) if self.teacher_ids is None else self.teacher_ids
        weights = ctx.feature_weights().float().mean(dim=0)
        student = get_feature(ctx.student, self.student_feature, "the student")
        total = zero_loss(ctx)
        for t in ids:
            if not 0 <= t < ctx.num_teachers:
                raise DistillError(
                    f"rkd: teacher index {t} is out of range, the batch has {ctx.num_teachers} teachers"
                )
            teacher = get_feature(ctx.teachers[t], self.teacher_feature, f"teacher {t}")
            total = total + weights[t] * self.relation_loss(student, teacher)
        return total
