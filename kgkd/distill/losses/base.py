"""``DistillLoss`` base class, the ``LOSSES`` registry and ``build_loss``.

Every loss is a ``torch.nn.Module`` taking one :class:`LossContext` and returning
a scalar. Losses that are means over samples also expose ``per_sample(ctx) ->
Tensor[B]`` so that wrappers (``combined``, ``per_task``) can mix them per sample.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from kgkd.distill.context import LossContext
from kgkd.errors import ConfigError, DistillError
from kgkd.utils.registry import Registry
from kgkd.utils.suggest import suggestion

#: Options owned by the engine's schedule (``LossContext.temperature`` / ``.alpha``), never by a loss.
ENGINE_OWNED = ("temperature", "alpha")

#: Losses by name: ``LOSSES.get("kd")`` → class; build one with :func:`build_loss`.
LOSSES: Registry[type[DistillLoss]] = Registry("loss")


class DistillLoss(nn.Module):
    """Base class of distillation losses: ``forward(ctx) -> scalar Tensor``.

    Subclasses that are per-sample means implement :meth:`per_sample`; the default
    ``forward`` then averages it. Losses holding shape-dependent parameters
    (projectors) build them in :meth:`setup`, which the engine calls with the first
    batch's context BEFORE creating the optimizer.
    """

    def per_sample(self, ctx: LossContext) -> Tensor:
        """Loss of each sample ``[B]``; not every loss is decomposable per sample."""
        raise DistillError(
            f"loss {type(self).__name__} is not a per-sample mean (e.g. relational losses), so it "
            "cannot be mixed per sample; use it as a separate term of weighted_sum instead"
        )

    def forward(self, ctx: LossContext) -> Tensor:
        return self.per_sample(ctx).mean()

    def setup(self, ctx: LossContext) -> None:
        """Create parameters whose shapes depend on the data (default: nothing to do)."""
        for child in self.children():
            if isinstance(child, DistillLoss):
                child.setup(ctx)
            elif isinstance(child, (nn.ModuleDict, nn.ModuleList)):
                for sub in child.children():
                    if isinstance(sub, DistillLoss):
                        sub.setup(ctx)


def has_per_sample(loss: DistillLoss) -> bool:
    """Whether ``loss`` overrides :meth:`DistillLoss.per_sample`."""
    return type(loss).per_sample is not DistillLoss.per_sample


def zero_loss(ctx: LossContext) -> Tensor:
    """A scalar 0 attached to the student's graph (backward works, contributes nothing)."""
    return ctx.student.logits.sum() * 0.0


def check_kwargs(name: str, cls: type, kwargs: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` naming any keyword ``cls.__init__`` does not accept."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [p for p in params if p != "self"]
    for key in kwargs:
        if key in ENGINE_OWNED and key not in accepted:
            raise ConfigError(
                f"loss '{name}' takes no '{key}': the engine's schedule owns it and every loss reads "
                f"ctx.{key}. Set EngineConfig.{key} (recipe key distill.engine.{key}; "
                f"{key}_end / {key}_schedule anneal it) instead"
            )
        if key not in accepted:
            hint = suggestion(key, accepted)
            raise ConfigError(
                f"loss '{name}' has no option '{key}'.{hint} "
                f"Accepted options: {', '.join(accepted) or '(none)'}"
            )


def build_loss(name: str, **kwargs: Any) -> DistillLoss:
    """Build the loss registered as ``name`` with options ``kwargs``.

    Unknown names and unknown options raise ``ConfigError`` with a did-you-mean.

    >>> build_loss("kd").__class__.__name__
    'KDLoss'
    """
    cls = LOSSES.get(name)
    check_kwargs(name, cls, kwargs)
    return cls(**kwargs)


def as_loss(spec: DistillLoss | str | Mapping[str, Any], where: str) -> DistillLoss:
    """Turn a loss spec (instance, name, or ``{"name": ..., **options}``) into a loss.

    ``where`` names the config position for error messages (e.g. ``"weighted_sum.losses.kd"``).
    """
    if isinstance(spec, DistillLoss):
        return spec
    if isinstance(spec, str):
        return build_loss(spec)
    if isinstance(spec, Mapping):
        options = dict(spec)
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(
                f"{where}: a loss given as a mapping needs a 'name' key (e.g. name: kd)"
            )
        return build_loss(name, **options)
    raise ConfigError(
        f"{where}: expected a loss name, a mapping with 'name', or a DistillLoss, got {type(spec).__name__}"
    )


def as_float(value: Tensor | float) -> float:
    """A detached Python float, for logging."""
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
