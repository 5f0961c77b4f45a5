"""``per_task``: route the samples of each task to that task's loss, with per-task weights.

Multi-task students have one head per task (the student's business); the batch
carries ``ctx.task`` ``[B]`` and this wrapper applies ``losses[task_id]`` to the
rows of that task only (a row subset of the context), then sums
``weight[task_id] · loss``. Tasks absent from a batch contribute nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from kgkd.distill.context import LossContext
from kgkd.distill.losses.base import LOSSES, DistillLoss, as_float, as_loss, zero_loss
from kgkd.errors import ConfigError, DistillError


def _task_id(key: Any) -> int:
    try:
        return int(key)
    except (TypeError, ValueError):
        raise ConfigError(
            f"per_task: task key {key!r} is not an integer task id (use 0, 1, ...)"
        ) from None


@LOSSES.register("per_task")
class PerTaskLoss(DistillLoss):
    """One loss per task id, applied to that task's samples.

    Args:
        losses: task id → loss spec (YAML string keys like ``"0"`` are accepted).
        weights: task id → weight (default 1).
        default: loss for task ids not listed; without it such samples raise ``DistillError``.

    ``last_terms`` maps ``"task<id>"`` to each present task's loss and ``"total"``.
    """

    def __init__(
        self,
        losses: Mapping[Any, Any],
        weights: Mapping[Any, float] | None = None,
        default: Any = None,
    ) -> None:
        super().__init__()
        if not losses:
            raise ConfigError("per_task: 'losses' is empty; give at least one task_id: loss entry")
        self.task_losses = nn.ModuleDict(
            {str(_task_id(k)): as_loss(spec, f"per_task.losses.{k}") for k, spec in losses.items()}
        )
        self.task_weights = {_task_id(k): float(w) for k, w in (weights or {}).items()}
        unknown = sorted(set(self.task_weights) - {int(k) for k in self.task_losses})
        if unknown:
            raise ConfigError(
                f"per_task: weights for task ids {unknown} that have no loss; tasks: {sorted(map(int, self.task_losses))}"
            )
        self.default = None if default is None else as_loss(default, "per_task.default")
        self.last_terms: dict[str, float] = {}

    def forward(self, ctx: LossContext) -> Tensor:
        if ctx.task is None:
            raise DistillError(
                "per_task loss needs LossContext.task (task id per sample) but it is None"
            )
        task = ctx.task.to(ctx.student.logits.device)
        total = zero_loss(ctx)
        terms: dict[str, float] = {}
        for tid in torch.unique(task).tolist():
            key = str(tid)
            loss = self.task_losses[key] if key in self.task_losses else self.default  # noqa: SIM401
            if loss is None:
                raise DistillError(
                    f"per_task: samples of task id {tid} but losses are configured only for task ids "
                    f"{sorted(map(int, self.task_losses))}; add one or set 'default'"
                )
            value = loss(ctx.select(task == tid))
            terms[f"task{tid}"] = as_float(value)
            total = total + self.task_weights.get(tid, 1.0) * value
        terms["total"] = as_float(total)
        self.last_terms = terms
        return total
