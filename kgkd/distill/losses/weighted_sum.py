"""``weighted_sum``: a fixed-weight sum of named losses, with per-term values for logging."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from kgkd.distill.context import LossContext
from kgkd.distill.losses.base import LOSSES, DistillLoss, as_float, as_loss
from kgkd.errors import ConfigError


@LOSSES.register("weighted_sum")
class WeightedSum(DistillLoss):
    """``Σ_k weight_k · loss_k``.

    Args:
        losses: name → loss spec (loss name, ``{"name": ..., **options}`` or instance).
        weights: name → weight (missing names weigh 1).

    After each call ``last_terms`` maps every name to its *unweighted* value and
    ``"total"`` to the weighted sum.
    """

    def __init__(
        self, losses: Mapping[str, Any], weights: Mapping[str, float] | None = None
    ) -> None:
        super().__init__()
        if not losses:
            raise ConfigError("weighted_sum: 'losses' is empty; give at least one name: loss entry")
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(losses))
        if unknown:
            raise ConfigError(
                f"weighted_sum: weights given for unknown term(s) {unknown}; the terms are {sorted(losses)}"
            )
        self.terms = nn.ModuleDict(
            {name: as_loss(spec, f"weighted_sum.losses.{name}") for name, spec in losses.items()}
        )
        self.weights = {name: float(weights.get(name, 1.0)) for name in losses}
        self.last_terms: dict[str, float] = {}

    def forward(self, ctx: LossContext) -> Tensor:
        total = None
        terms: dict[str, float] = {}
        for name, loss in self.terms.items():
            value = loss(ctx)
            terms[name] = as_float(value)
            total = (
                self.weights[name] * value if total is None else total + self.weights[name] * value
            )
        terms["total"] = as_float(total)
        self.last_terms = terms
        return total

    def per_sample(self, ctx: LossContext) -> Tensor:
        return sum(self.weights[name] * loss.per_sample(ctx) for name, loss in self.terms.items())
