"""Feature alignment from fitted KG signals, handed to the engine as plain tensors and modules.

The engine's feature loss (``kgkd.distill.losses.feature``) regresses projected student
features onto each teacher's cached features, weighting teacher ``t`` on a sample by
``ctx.alignment_weights[:, t]``. This module supplies, from :class:`FittedSignals`:

* :func:`alignment_weighting` — a ``[D, T]`` table of alignment weights
  (``FittedSignals.alignment``) as a ``DomainTableWeighting`` (the engine's
  ``alignment_weighting``);
* :class:`FiLMFeatureLoss` — the feature loss with one :class:`FiLMProjector` per
  (teacher, feature pair), modulated by the KG embedding of each sample's domain (a
  ``[D, H]`` tensor buffer; no graph object reaches the engine);
* :class:`FeatureAlignedLoss` / :func:`with_feature_alignment` — ``base + weight · feature``,
  logging the feature term next to the base loss's own terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from kgkd.distill.context import LossContext
from kgkd.distill.losses.base import DistillLoss, as_float
from kgkd.distill.losses.feature import FeatureLoss, get_feature
from kgkd.distill.weighting import DomainTableWeighting
from kgkd.errors import ConfigError, DistillError
from kgkd.signals.heads import FiLMProjector

#: Projector choices of :func:`with_feature_alignment` (``film`` = KG-conditioned).
ALIGNMENT_PROJECTORS = ("linear", "film", "auto", "mlp", "conv", "identity")


def alignment_weighting(fitted: Any, domain_names: Sequence[str]) -> DomainTableWeighting:
    """The fitted alignment weights of ``domain_names`` (domain id i = ``domain_names[i]``)."""
    names = list(domain_names)
    return DomainTableWeighting(fitted.alignment(names), names, normalize=True)


class FiLMFeatureLoss(FeatureLoss):
    """Feature loss whose projectors are FiLM-conditioned on the sample's domain embedding.

    Args:
        condition: ``[D, H]`` KG embeddings of the domains (row ``d`` = domain id ``d``).
        pairs, kind, layer_weights, teachers: as for :class:`FeatureLoss`.
    """

    def __init__(
        self,
        condition: Tensor,
        pairs: Sequence[Any] | str = ("pooled",),
        kind: Literal["mse", "cosine"] = "mse",
        layer_weights: Sequence[float] | None = None,
        teachers: Sequence[int] | None = None,
    ) -> None:
        super().__init__(pairs, kind, "linear", layer_weights, teachers)
        cond = torch.as_tensor(condition, dtype=torch.float32)
        if cond.dim() != 2:
            raise ConfigError(
                f"FiLMFeatureLoss: condition must be [domains, dim], got shape {list(cond.shape)}"
            )
        self.register_buffer("condition", cond.detach().clone())

    def make_projector(self, student_shape: torch.Size, teacher_shape: torch.Size) -> nn.Module:
        return FiLMProjector(student_shape, teacher_shape, self.condition.size(1))

    def _condition(self, domain: Tensor) -> Tensor:
        ids = domain.long().to(self.condition.device)
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.condition.size(0)):
            raise DistillError(
                f"FiLMFeatureLoss: domain id {int(ids.max())} has no KG embedding (built for "
                f"{self.condition.size(0)} domains); build it with the engine's domain list"
            )
        return self.condition[ids]

    def per_sample(self, ctx: LossContext) -> Tensor:
        if any(
            self.key(t, k) not in self.projectors
            for t in self._teachers(ctx)
            for k in range(len(self.pairs))
        ):
            self.setup(ctx)
        weights = ctx.feature_weights().float()
        cond = self._condition(ctx.domain)
        total = torch.zeros(ctx.batch_size, device=ctx.student.logits.device)
        for t in self._teachers(ctx):
            for k, (s_name, t_name) in enumerate(self.pairs):
                feature = get_feature(ctx.student, s_name, "the student").float()
                projected = self.projectors[self.key(t, k)](feature, cond.to(feature.device))
                target = get_feature(ctx.teachers[t], t_name, f"teacher {t}").detach()
                total = total + self.layer_weights[k] * weights[:, t] * self.distance(
                    projected, target
                )
        return total


class FeatureAlignedLoss(DistillLoss):
    """``base + weight · feature``; ``last_terms`` = the base's terms plus ``feature`` and ``total``."""

    def __init__(self, base: DistillLoss, feature: DistillLoss, weight: float) -> None:
        super().__init__()
        if weight < 0:
            raise ConfigError(f"distill.feature_alignment.weight must be >= 0, got {weight}")
        self.base = base
        self.feature = feature
        self.weight = float(weight)
        self.last_terms: dict[str, float] = {}

    def forward(self, ctx: LossContext) -> Tensor:
        base = self.base(ctx)
        feature = self.feature(ctx)
        total = base + self.weight * feature
        self.last_terms = {
            **getattr(self.base, "last_terms", {}),
            "distill": as_float(base),
            "feature": as_float(feature),
            "total": as_float(total),
        }
        return total

    def per_sample(self, ctx: LossContext) -> Tensor:
        return self.base.per_sample(ctx) + self.weight * self.feature.per_sample(ctx)


def with_feature_alignment(
    base: DistillLoss,
    fitted: Any,
    domain_names: Sequence[str],
    weight: float,
    loss: Literal["mse", "cosine"] = "mse",
    projector: str = "linear",
    pairs: Sequence[Any] = ("pooled",),
) -> tuple[FeatureAlignedLoss, DomainTableWeighting]:
    """``(loss, alignment_weighting)`` for the engine: ``base`` plus KG-weighted feature alignment.

    ``projector="film"`` conditions the projectors on the KG domain embeddings; any other
    name is a ``kgkd.distill.projectors`` projector (``linear``, ``mlp``, ...).
    """
    if projector not in ALIGNMENT_PROJECTORS:
        raise ConfigError(
            f"distill.feature_alignment.projector: '{projector}' is not one of {list(ALIGNMENT_PROJECTORS)}"
        )
    names = list(domain_names)
    if projector == "film":
        feature: FeatureLoss = FiLMFeatureLoss(fitted.domain_embeddings(names), pairs, loss)
    else:
        feature = FeatureLoss(pairs, loss, projector)
    return FeatureAlignedLoss(base, feature, weight), alignment_weighting(fitted, names)
