"""Distillation losses, one per file, all ``DistillLoss(ctx) -> scalar``; pick them by name.

>>> from kgkd.distill.losses import LOSSES, build_loss
>>> LOSSES.names()[:3]
['ce', 'combined', 'feature']
"""

from kgkd.distill.losses.base import LOSSES, DistillLoss, as_loss, build_loss
from kgkd.distill.losses.ce import CELoss
from kgkd.distill.losses.combined import CombinedLoss
from kgkd.distill.losses.feature import FeatureLoss
from kgkd.distill.losses.kd import KDLoss
from kgkd.distill.losses.multi_teacher_kd import MultiTeacherKDLoss
from kgkd.distill.losses.per_task import PerTaskLoss
from kgkd.distill.losses.rkd import RKDLoss
from kgkd.distill.losses.uncertainty import UncertaintyWeighting
from kgkd.distill.losses.weighted_sum import WeightedSum

__all__ = [
    "LOSSES",
    "CELoss",
    "CombinedLoss",
    "DistillLoss",
    "FeatureLoss",
    "KDLoss",
    "MultiTeacherKDLoss",
    "PerTaskLoss",
    "RKDLoss",
    "UncertaintyWeighting",
    "WeightedSum",
    "as_loss",
    "build_loss",
]
