"""``uncertainty``: multi-task weighting by learned homoscedastic uncertainty.

Kendall, Gal & Cipolla (CVPR 2018): each task ``k`` gets a learned log-variance
``s_k`` and the total is ``Σ_k exp(−s_k) · L_k + s_k``. A task with a large or
noisy loss learns a large ``s_k`` and is down-weighted; the ``+ s_k`` term stops
all weights collapsing to zero. For a fixed loss value the optimum is
``s_k = log L_k``. The ``s_k`` are parameters of this module, so the optimizer
must include ``loss.parameters()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from kgkd.distill.context import LossContext
from kgkd.distill.losses.base import LOSSES, DistillLoss, as_float, as_loss
from kgkd.errors import ConfigError


@LOSSES.register("uncertainty")
class UncertaintyWeighting(DistillLoss):
    """Learned-uncertainty combination of named losses (tasks).

    Args:
        losses: name → loss spec (loss name, ``{"name": ..., **options}`` or instance).
        init_log_var: starting value of every ``s_k`` (0 → weight 1).

    ``last_terms`` holds each term's raw value and its current weight ``exp(−s_k)``
    (key ``"<name>.weight"``) plus ``"total"``.
    """

    def __init__(self, losses: Mapping[str, Any], init_log_var: float = 0.0) -> None:
        super().__init__()
        if not losses:
            raise ConfigError("uncertainty: 'losses' is empty; give at least one name: loss entry")
        self.terms = nn.ModuleDict(
            {name: as_loss(spec, f"uncertainty.losses.{name}") for name, spec in losses.items()}
        )
        self.log_vars = nn.Parameter(torch.full((len(self.terms),), float(init_log_var)))
        self.last_terms: dict[str, float] = {}

    def weights(self) -> dict[str, float]:
        """Current weight ``exp(−s_k)`` of every term."""
        return {name: float(torch.exp(-s)) for name, s in zip(self.terms, self.log_vars.detach())}

    def forward(self, ctx: LossContext) -> Tensor:
        total = self.log_vars.sum()
        terms: dict[str, float] = {}
        for (name, loss), s in zip(self.terms.items(), self.log_vars):
            value = loss(ctx)
            total = total + torch.exp(-s) * value
            terms[name] = as_float(value)
            terms[f"{name}.weight"] = float(torch.exp(-s.detach()))
        terms["total"] = as_float(total)
        self.last_terms = terms
        return total
