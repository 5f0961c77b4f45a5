"""``EngineConfig``: every knob of a distillation run, validated up front.

A config is a flat dataclass so that a YAML recipe, a CLI and a test can all
build one the same way (``EngineConfig.from_dict``). Unknown keys, wrong types
and out-of-range values raise :class:`~kgkd.errors.ConfigError` naming the key
(and, for typos, the closest valid key) before any training starts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kgkd.distill.schedules import SCHEDULES
from kgkd.errors import ConfigError, ConfigValueError
from kgkd.utils.suggest import suggestion
from kgkd.utils.typed_config import from_mapping

_OPTIMIZERS = ("adamw", "sgd")
_SCHEDULERS = ("cosine", "linear", "constant")
_DEVICES = ("auto", "cpu", "cuda")
_AMP = ("auto", "bf16", "fp16", "off")
_MODES = ("max", "min")
#: Names other toolkits use for an option, pointed to in the did-you-mean hint.
_ALIASES = {
    "learning_rate": "lr",
    "num_epochs": "epochs",
    "n_epochs": "epochs",
    "max_epochs": "epochs",
    "bs": "batch_size",
    "max_grad_norm": "grad_clip",
    "clip_grad_norm": "grad_clip",
    "gradient_clipping": "grad_clip",
    "t": "temperature",
    "kd_temperature": "temperature",
    "patience": "early_stopping_patience",
    "fp16": "amp",
    "bf16": "amp",
    "mixed_precision": "amp",
    "output_dir": "checkpoint_dir",
}


@dataclass
class EngineConfig:
    """Hyper-parameters and runtime options of :class:`~kgkd.distill.engine.DistillationEngine`.

    Temperature and α follow a schedule from ``kgkd.distill.schedules``: they go
    from ``*_start`` to ``*_end`` (``None``: stay at start) along ``*_schedule``
    as training progresses. ``batch_size`` is per process: under ``torchrun``
    with N ranks the global batch is N × ``batch_size``. ``amp``: ``auto`` = bf16
    (or fp16) autocast on CUDA and fp32 on CPU; ``bf16`` also autocasts on CPU;
    ``fp16`` needs CUDA; ``off`` = fp32 everywhere.
    """

    # optimisation
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    momentum: float = 0.9
    scheduler: str = "cosine"
    warmup_steps: int = 0
    grad_clip: float | None = 1.0
    # distillation schedules
    temperature: float = 4.0
    temperature_end: float | None = None
    temperature_schedule: str = "constant"
    alpha: float = 0.9
    alpha_end: float | None = None
    alpha_schedule: str = "constant"
    # runtime
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    compile: bool = False
    num_workers: int = 0
    find_unused_parameters: bool = False
    # logging / evaluation
    log_every: int = 10
    eval_every: int = 1
    show_progress: bool = True
    early_stopping_metric: str | None = None
    early_stopping_patience: int = 3
    early_stopping_mode: str = "max"
    # checkpoints / interruption
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    max_steps: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ build
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineConfig:
        """Build a config from a mapping; unknown keys get a did-you-mean ConfigError."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"engine config must be a mapping of option → value, got {type(data).__name__}"
            )
        return from_mapping(cls, data, what="engine config", aliases=_ALIASES)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy of every option (checkpoints store it)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> EngineConfig:
        """A validated copy with some options changed."""
        return EngineConfig.from_dict({**self.to_dict(), **changes})

    # --------------------------------------------------------------- validate
    def validate(self) -> None:
        """Raise ConfigError naming the first option whose value is out of range."""
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        _positive_float("lr", self.lr)
        _non_negative("weight_decay", self.weight_decay)
        _non_negative("momentum", self.momentum)
        _choice("optimizer", self.optimizer, _OPTIMIZERS)
        _choice("scheduler", self.scheduler, _SCHEDULERS)
        _non_negative_int("warmup_steps", self.warmup_steps)
        if self.grad_clip is not None:
            _positive_float("grad_clip", self.grad_clip)
        _positive_float("temperature", self.temperature)
        if self.temperature_end is not None:
            _positive_float("temperature_end", self.temperature_end)
        _choice("temperature_schedule", self.temperature_schedule, tuple(SCHEDULES.names()))
        _unit("alpha", self.alpha)
        if self.alpha_end is not None:
            _unit("alpha_end", self.alpha_end)
        _choice("alpha_schedule", self.alpha_schedule, tuple(SCHEDULES.names()))
        _choice("device", self.device, _DEVICES)
        _choice("amp", self.amp, _AMP)
        _non_negative_int("num_workers", self.num_workers)
        _positive_int("log_every", self.log_every)
        _non_negative_int("eval_every", self.eval_every)
        _positive_int("early_stopping_patience", self.early_stopping_patience)
        _choice("early_stopping_mode", self.early_stopping_mode, _MODES)
        _non_negative_int("checkpoint_every", self.checkpoint_every)
        _positive_int("keep_checkpoints", self.keep_checkpoints)
        if self.max_steps is not None:
            _positive_int("max_steps", self.max_steps)
        if self.checkpoint_every and not self.checkpoint_dir:
            raise ConfigValueError(
                f"checkpoint_every={self.checkpoint_every} needs checkpoint_dir; "
                "set checkpoint_dir to a folder or checkpoint_every to 0",
                "checkpoint_every",
            )


# ---------------------------------------------------------------------- helpers
def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        hint = suggestion(value, choices)
        raise ConfigValueError(
            f"engine config {key}='{value}' is not one of {list(choices)}.{hint}", key
        )


def _positive_int(key: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigValueError(f"engine config {key} must be an integer ≥ 1, got {value!r}", key)


def _non_negative_int(key: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigValueError(f"engine config {key} must be an integer ≥ 0, got {value!r}", key)


def _positive_float(key: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigValueError(
            f"engine config {key} must be a finite number > 0, got {value!r}", key
        )


def _non_negative(key: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigValueError(
            f"engine config {key} must be a finite number ≥ 0, got {value!r}", key
        )


def _unit(key: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigValueError(f"engine config {key} must lie in [0, 1], got {value!r}", key)
