"""``feature``: hint distillation — projected student features regress teacher features.

For every teacher ``t`` and configured pair ``(student_feature, teacher_feature)``
a learned projector maps the student feature ``[B, *s]`` to the teacher feature's
shape ``[B, *t]`` (any rank: embeddings, token states, conv maps). The per-sample
distance (MSE or 1 − cosine) is weighted by the teacher's alignment weight for
that sample (``ctx.alignment_weights`` ``[B, T]`` or ``[T]``, falling back to
``ctx.teacher_weights``) and by the pair's layer weight, then summed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgkd.distill.context import LossContext
from kgkd.distill.losses.base import LOSSES, DistillLoss
from kgkd.distill.projectors import build_projector
from kgkd.errors import ConfigError, DistillError
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

KINDS = ("mse", "cosine")


def parse_pairs(pairs: Sequence[Any] | str, loss: str) -> list[tuple[str, str]]:
    """Normalise feature pairs: ``"name"``, ``"student:teacher"`` or ``[student, teacher]``."""
    if isinstance(pairs, str):
        pairs = [pairs]
    out: list[tuple[str, str]] = []
    for i, pair in enumerate(pairs):
        if isinstance(pair, str):
            student, _, teacher = pair.partition(":")
            out.append((student, teacher or student))
        elif (
            isinstance(pair, Sequence) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        ):
            out.append((pair[0], pair[1]))
        else:
            raise ConfigError(
                f"{loss}: pairs[{i}] = {pair!r}; give 'student_feature:teacher_feature' or "
                "[student_feature, teacher_feature]"
            )
    if not out:
        raise ConfigError(f"{loss}: give at least one (student_feature, teacher_feature) pair")
    return out


def get_feature(output: Any, name: str, who: str) -> Tensor:
    """``output.features[name]`` or a ``DistillError`` listing the features that exist."""
    features: Mapping[str, Tensor] = output.features or {}
    if name not in features:
        raise DistillError(
            f"{who} has no feature '{name}' (it has: {', '.join(sorted(features)) or 'none'}); "
            "fix the feature pair in the loss config or expose the layer in the model's features"
        )
    return features[name]


def projector_dtype(projector: nn.Module, default: torch.dtype) -> torch.dtype:
    """Dtype of ``projector``'s parameters (``default`` for parameter-free projectors)."""
    param = next(projector.parameters(), None)
    return param.dtype if param is not None else default


@LOSSES.register("feature")
class FeatureLoss(DistillLoss):
    """Projected feature matching against every teacher.

    Args:
        pairs: ``(student_feature, teacher_feature)`` names, e.g. ``["pooled:pooled"]``.
        kind: ``"mse"`` (mean squared error per sample) or ``"cosine"`` (1 − cosine similarity).
        projector: projector name (``auto`` / ``linear`` / ``conv`` / ``mlp`` / ``identity``).
        layer_weights: one weight per pair (default 1 each).
        teachers: indices of the teachers to align with (default: all).
        projector_options: extra options of the projector (e.g. ``{"hidden": 128}``).

    Projectors are built by :meth:`setup` from the first batch (the engine calls it
    before creating the optimizer); calling the loss first builds them lazily.
    """

    def __init__(
        self,
        pairs: Sequence[Any] | str = ("pooled",),
        kind: Literal["mse", "cosine"] = "mse",
        projector: str = "auto",
        layer_weights: Sequence[float] | None = None,
        teachers: Sequence[int] | None = None,
        projector_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ConfigError(f"feature loss: kind must be one of {KINDS}, got '{kind}'")
        self.pairs = parse_pairs(pairs, "feature loss")
        weights = (
            [1.0] * len(self.pairs) if layer_weights is None else [float(w) for w in layer_weights]
        )
        if len(weights) != len(self.pairs):
            raise ConfigError(
                f"feature loss: {len(weights)} layer_weights for {len(self.pairs)} feature pairs; give one per pair"
            )
        self.layer_weights = weights
        self.kind = kind
        self.projector_kind = projector
        self.projector_options = dict(projector_options or {})
        self.teacher_ids = None if teachers is None else [int(t) for t in teachers]
        self.projectors = nn.ModuleDict()

    def _teachers(self, ctx: LossContext) -> list[int]:
        ids = list(range(ctx.num_teachers)) if self.teacher_ids is None else self.teacher_ids
        for t in ids:
            if not 0 <= t < ctx.num_teachers:
                raise DistillError(
                    f"feature loss: teacher index {t} is out of range, the batch has {ctx.num_teachers} teachers"
                )
        return ids

    @staticmethod
    def key(teacher: int, pair: int) -> str:
        """Name of the projector of ``teacher`` and feature ``pair`` in ``self.projectors``."""
        return f"t{teacher}_p{pair}"

    def setup(self, ctx: LossContext) -> None:
        """Build one projector per (teacher, pair) from the features' per-sample shapes."""
        for t in self._teachers(ctx):
            for k, (s_name, t_name) in enumerate(self.pairs):
                if self.key(t, k) in self.projectors:
                    continue
                s = get_feature(ctx.student, s_name, "the student")
                f = get_feature(ctx.teachers[t], t_name, f"teacher {t}")
                # fp32 parameters even when the probe batch ran under AMP (bf16/fp16 features)
                dtype = torch.promote_types(s.dtype, torch.float32)
                proj = self.make_projector(s.shape[1:], f.shape[1:])
                self.projectors[self.key(t, k)] = proj.to(device=s.device, dtype=dtype)

    def make_projector(self, student_shape: torch.Size, teacher_shape: torch.Size) -> nn.Module:
        """The projector of one (teacher, pair); subclasses swap in conditioned projectors."""
        return build_projector(self.projector_kind, student_shape, teacher_shape, **self.projector_options)

    def distance(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Per-sample distance ``[B]`` between projected student and teacher features."""
        if self.kind == "mse":
            return (student.float() - teacher.float()).pow(2).flatten(1).mean(dim=1)
        return 1.0 - F.cosine_similarity(
            student.float().flatten(1), teacher.float().flatten(1), dim=1
        )

    def per_sample(self, ctx: LossContext) -> Tensor:
        teachers = self._teachers(ctx)
        if any(
            self.key(t, k) not in self.projectors for t in teachers for k in range(len(self.pairs))
        ):
            log.warning(
                "feature loss: building projectors lazily; call loss.setup(ctx) before creating the optimizer"
            )
            self.setup(ctx)
        weights = ctx.feature_weights().float()
        total = torch.zeros(ctx.batch_size, device=ctx.student.logits.device)
        for t in teachers:
            for k, (s_name, t_name) in enumerate(self.pairs):
                projector = self.projectors[self.key(t, k)]
                feature = get_feature(ctx.student, s_name, "the student")
                if not torch.is_autocast_enabled(feature.device.type):
                    feature = feature.to(projector_dtype(projector, feature.dtype))
                projected = projector(feature)
                target = get_feature(ctx.teachers[t], t_name, f"teacher {t}").detach()
                if projected.shape != target.shape:
                    raise DistillError(
                        f"feature loss: teacher {t} feature '{t_name}' has shape {list(target.shape)} but "
                        f"its projector outputs {list(projected.shape)}; the teacher's feature shape changed"
                    )
                total = total + self.layer_weights[k] * weights[:, t] * self.distance(
                    projected, target
                )
        return total
