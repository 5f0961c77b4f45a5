"""Distillation: losses, schedules, teacher weighting, projectors, the teacher cache
and the training engine. Everything here sees tensors only — no graphs.

Names resolve lazily (PEP 562): reading a recipe config imports
``kgkd.distill.config`` (``EngineConfig``) without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_EXPORTS = {
    "CachedTeacher": "cache",
    "TeacherCache": "cache",
    "cache_fingerprint": "cache",
    "EngineConfig": "config",
    "LossContext": "context",
    "DistillationEngine": "engine",
    "History": "engine",
    "LOSSES": "losses",
    "DistillLoss": "losses",
    "build_loss": "losses",
    "PROJECTORS": "projectors",
    "Projector": "projectors",
    "build_projector": "projectors",
    "build_projectors": "projectors",
    "SCHEDULES": "schedules",
    "Schedule": "schedules",
    "build_schedule": "schedules",
    "DomainTableWeighting": "weighting",
    "TeacherWeighting": "weighting",
    "UniformWeighting": "weighting",
    "all_reduce_mean": "weighting",
}

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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"kgkd.distill.{_EXPORTS[name]}"), name)
    try:  # a submodule not imported yet (kgkd.distill.losses, ...)
        return importlib.import_module(f"kgkd.distill.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"kgkd.distill.{name}":
            raise
    raise AttributeError(f"module 'kgkd.distill' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
