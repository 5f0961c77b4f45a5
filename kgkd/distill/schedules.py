"""Schedules: a value as a function of training progress (0 → 1).

Used for the distillation temperature (annealed down: soft targets early, sharp
targets late) and for α (the KD vs. task-loss weight). Every schedule holds
``start`` for the first ``warmup`` fraction of training, then moves from
``start`` to ``end`` over the rest.

>>> build_schedule({"name": "linear", "start": 4.0, "end": 1.0})(0.5)
2.5
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

from kgkd.errors import ConfigError
from kgkd.utils.registry import Registry
from kgkd.utils.suggest import suggestion

#: Schedule classes by name: ``constant``, ``linear``, ``cosine``.
SCHEDULES: Registry[type[Schedule]] = Registry("schedule")


class Schedule:
    """Base: ``schedule(progress) -> float`` for ``progress`` in [0, 1] (clamped)."""

    def __init__(self, start: float, end: float | None = None, warmup: float = 0.0) -> None:
        if not 0.0 <= warmup < 1.0:
            raise ConfigError(
                f"{type(self).__name__}: warmup is a fraction of training in [0, 1), got {warmup}"
            )
        self.start = float(start)
        self.end = float(start if end is None else end)
        self.warmup = float(warmup)

    def shape(self, x: float) -> float:
        """How far from ``start`` to ``end`` the value is at ``x`` in [0, 1] (0 → start, 1 → end)."""
        raise NotImplementedError

    def __call__(self, progress: float) -> float:
        p = min(max(float(progress), 0.0), 1.0)
        if p <= self.warmup:
            return self.start
        x = (p - self.warmup) / (1.0 - self.warmup)
        return self.start + (self.end - self.start) * self.shape(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(start={self.start}, end={self.end}, warmup={self.warmup})"


@SCHEDULES.register("constant")
class ConstantSchedule(Schedule):
    """Always ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__(value, value)

    def shape(self, x: float) -> float:
        return 0.0


@SCHEDULES.register("linear")
class LinearSchedule(Schedule):
    """Straight line from ``start`` to ``end``."""

    def shape(self, x: float) -> float:
        return x


@SCHEDULES.register("cosine")
class CosineSchedule(Schedule):
    """Half-cosine from ``start`` to ``end``: slow at both ends, fastest mid-way."""

    def shape(self, x: float) -> float:
        return 0.5 * (1.0 - math.cos(math.pi * x))


def build_schedule(spec: float | Schedule | Mapping[str, Any], what: str = "schedule") -> Schedule:
    """A schedule from a number (constant), an instance, or ``{"name": ..., **options}``.

    ``what`` names the option for errors (e.g. ``"temperature"``).
    """
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return ConstantSchedule(float(spec))
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"{what}: expected a number or a mapping like {{name: linear, start: 4, end: 1}}, got {spec!r}"
        )
    options = dict(spec)
    name = options.pop("name", "constant" if "value" in options else None)
    if not isinstance(name, str):
        raise ConfigError(
            f"{what}: a schedule mapping needs 'name' (one of {', '.join(SCHEDULES.names())})"
        )
    cls = SCHEDULES.get(name)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in options:
        if key not in accepted:
            hint = suggestion(key, accepted)
            raise ConfigError(
                f"{what}: schedule '{name}' has no option '{key}'.{hint} Accepted: {', '.join(accepted)}"
            )
    missing = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.default is inspect.Parameter.empty and p.name not in options
    ]
    if missing:
        raise ConfigError(f"{what}: schedule '{name}' needs option(s) {', '.join(missing)}")
    return cls(**options)


def schedule_from_fields(kind: str, start: float, end: float | None, what: str) -> Schedule:
    """A T/α schedule from ``EngineConfig`` fields (``end=None`` or ``constant``: stays at ``start``)."""
    if end is None or kind == "constant":
        return build_schedule(float(start), what)
    return build_schedule({"name": kind, "start": start, "end": end}, what)
