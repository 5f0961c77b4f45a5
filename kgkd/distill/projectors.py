"""Projectors: map a student feature onto a teacher feature's shape.

Feature (hint) distillation compares a student feature with a teacher feature of
another width or layout. A projector is a small learned module from the student's
per-sample shape to the teacher's; shapes never include the batch dimension and
may have any rank (``[D]`` embeddings, ``[L, D]`` token states, ``[C, H, W]`` maps),
so nothing assumes text-shaped tensors (TextBrewer #44).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from kgkd.errors import ConfigError, DistillError
from kgkd.utils.registry import Registry
from kgkd.utils.suggest import suggestion

Shape = tuple[int, ...]

#: Projector classes by name: ``linear``, ``conv``, ``mlp``, ``identity``.
PROJECTORS: Registry[type[Projector]] = Registry("projector")


class Projector(nn.Module):
    """Base: ``forward(x [B, *in_shape]) -> [B, *out_shape]``."""

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int]) -> None:
        super().__init__()
        self.in_shape: Shape = tuple(int(s) for s in in_shape)
        self.out_shape: Shape = tuple(int(s) for s in out_shape)
        if not self.in_shape or not self.out_shape or min(self.in_shape + self.out_shape) < 1:
            raise ConfigError(
                f"{type(self).__name__}: feature shapes must be non-empty and positive (without the "
                f"batch dimension), got {self.in_shape} → {self.out_shape}"
            )

    def check_input(self, x: Tensor) -> None:
        """Raise ``DistillError`` if ``x`` is not ``[B, *in_shape]``."""
        if tuple(x.shape[1:]) != self.in_shape:
            raise DistillError(
                f"{type(self).__name__} was built for student features of shape {list(self.in_shape)} "
                f"(per sample) but got {list(x.shape[1:])}; the student's feature shape changed since setup"
            )


@PROJECTORS.register("linear")
class LinearProjector(Projector):
    """A linear map. Shapes that agree except in the last dim (``[L, Ds] → [L, Dt]``)
    get a per-position ``Linear(Ds, Dt)``; any other pair is flattened, mapped, reshaped."""

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int]) -> None:
        super().__init__(in_shape, out_shape)
        self.per_position = self.in_shape[:-1] == self.out_shape[:-1]
        if self.per_position:
            self.linear = nn.Linear(self.in_shape[-1], self.out_shape[-1])
        else:
            self.linear = nn.Linear(math.prod(self.in_shape), math.prod(self.out_shape))

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        if self.per_position:
            return self.linear(x)
        return self.linear(x.flatten(1)).view(x.shape[0], *self.out_shape)


@PROJECTORS.register("mlp")
class MLPProjector(Projector):
    """Flatten → Linear → GELU → Linear → reshape; more capacity than ``linear``."""

    def __init__(
        self, in_shape: Sequence[int], out_shape: Sequence[int], hidden: int = 256
    ) -> None:
        super().__init__(in_shape, out_shape)
        if hidden < 1:
            raise ConfigError(f"mlp projector: hidden must be >= 1, got {hidden}")
        self.net = nn.Sequential(
            nn.Linear(math.prod(self.in_shape), hidden),
            nn.GELU(),
            nn.Linear(hidden, math.prod(self.out_shape)),
        )

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.net(x.flatten(1)).view(x.shape[0], *self.out_shape)


@PROJECTORS.register("conv")
class ConvProjector(Projector):
    """For feature maps ``[C, H, W]``: 1×1 conv to the teacher's channels, then adaptive
    average pooling to the teacher's spatial size."""

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int]) -> None:
        super().__init__(in_shape, out_shape)
        if len(self.in_shape) != 3 or len(self.out_shape) != 3:
            raise ConfigError(
                f"conv projector needs feature maps [C, H, W] on both sides, got student "
                f"{list(self.in_shape)} and teacher {list(self.out_shape)}; use projector 'linear' instead"
            )
        self.conv = nn.Conv2d(self.in_shape[0], self.out_shape[0], kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return F.adaptive_avg_pool2d(self.conv(x), self.out_shape[1:])


@PROJECTORS.register("identity")
class IdentityProjector(Projector):
    """No parameters; only for student and teacher features of the same shape."""

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int]) -> None:
        super().__init__(in_shape, out_shape)
        if self.in_shape != self.out_shape:
            raise ConfigError(
                f"identity projector needs equal shapes, got student {list(self.in_shape)} and "
                f"teacher {list(self.out_shape)}; use projector 'linear'"
            )

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return x


def build_projector(
    kind: str, in_shape: Sequence[int], out_shape: Sequence[int], **kwargs: Any
) -> Projector:
    """One projector by name; ``"auto"`` is ``conv`` for ``[C,H,W] → [C,H,W]``, else ``linear``."""
    if kind == "auto":
        kind = "conv" if len(in_shape) == 3 and len(out_shape) == 3 else "linear"
    cls = PROJECTORS.get(kind)
    accepted = [
        p
        for p in inspect.signature(cls.__init__).parameters
        if p not in ("self", "in_shape", "out_shape")
    ]
    for key in kwargs:
        if key not in accepted:
            hint = suggestion(key, accepted)
            raise ConfigError(
                f"projector '{kind}' has no option '{key}'.{hint} Accepted: {', '.join(accepted) or '(none)'}"
            )
    return cls(in_shape, out_shape, **kwargs)


def build_projectors(
    student_shape: Sequence[int],
    teacher_shapes: Sequence[Sequence[int]],
    kind: str = "auto",
    **kwargs: Any,
) -> nn.ModuleList:
    """One projector per teacher, each from ``student_shape`` to that teacher's feature shape."""
    return nn.ModuleList(
        build_projector(kind, student_shape, shape, **kwargs) for shape in teacher_shapes
    )
