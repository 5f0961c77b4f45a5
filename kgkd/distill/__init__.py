"""Distillation: losses, schedules, teacher weighting, projectors, the teacher cache
and the training engine. Everything here sees tensors only — no graphs."""

from kgkd.distill.cache import CachedTeacher, TeacherCache, cache_fingerprint
from kgkd.distill.config import EngineConfig
from kgkd.distill.context import LossContext
from kgkd.distill.engine import DistillationEngine, History
from kgkd.distill.losses import LOSSES, DistillLoss, build_loss
from kgkd.distill.projectors import PROJECTORS, Projector, build_projector, build_projectors
from kgkd.distill.schedules import SCHEDULES, Schedule, build_schedule
from kgkd.distill.weighting import (
    DomainTableWeighting,
    TeacherWeighting,
    UniformWeighting,
    all_reduce_mean,
)

__all__ = [
    "LOSSES",
    "PROJECTORS",
    "SCHEDULES",
    "CachedTeacher",
    "DistillLoss",
    "DistillationEngine",
    "DomainTableWeighting",
    "EngineConfig",
    "History",
    "LossContext",
    "Projector",
    "Schedule",
    "TeacherCache",
    "TeacherWeighting",
    "UniformWeighting",
    "all_reduce_mean",
    "build_loss",
    "build_projector",
    "build_projectors",
    "build_schedule",
    "cache_fingerprint",
]
