"""Teacher weighting: how much each teacher is trusted on each sample.

A ``TeacherWeighting`` maps the samples' domains (and, optionally, the teachers'
logits) to a ``[B, T]`` matrix whose rows sum to 1; the losses read it as
``ctx.teacher_weights``. Here: uniform and a fixed domain × teacher table;
``kgkd.signals`` adds confidence-based and knowledge-graph-GNN weightings.

Under DDP every rank sees a different shard of the batch. Any batch statistic
that feeds weights (mean confidence, scores) must be averaged over ranks with
:func:`all_reduce_mean` BEFORE the softmax, or ranks train towards different
weights (NeMo-RL #2797).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from kgkd.errors import DistillError, SignalError


def all_reduce_mean(tensor: Tensor) -> Tensor:
    """Average ``tensor`` over DDP ranks (a no-op copy when not distributed); differentiable
    only in the local term, as is usual for cross-rank statistics."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    reduced = tensor.detach().clone()
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    reduced = reduced / dist.get_world_size()
    # keep the local gradient path: value = global mean, gradient = local term's
    return tensor + (reduced - tensor.detach())


class TeacherWeighting(nn.Module):
    """Base: ``forward(domain [B], teacher_logits list of [B, C_t]) -> [B, T]``, rows sum to 1."""

    def __init__(self, num_teachers: int) -> None:
        super().__init__()
        if num_teachers < 1:
            raise SignalError(
                f"{type(self).__name__}: need at least one teacher, got num_teachers={num_teachers}"
            )
        self.num_teachers = int(num_teachers)

    def check_inputs(self, domain: Tensor, teacher_logits: Sequence[Tensor]) -> None:
        """Raise ``DistillError`` when the number of teacher outputs is not ``num_teachers``."""
        if len(teacher_logits) not in (0, self.num_teachers):
            raise DistillError(
                f"{type(self).__name__} was built for {self.num_teachers} teachers but got "
                f"{len(teacher_logits)} teacher outputs; build the weighting with the engine's teacher list"
            )


class UniformWeighting(TeacherWeighting):
    """Every teacher weighs ``1/T`` on every sample (plain averaging baseline)."""

    def forward(self, domain: Tensor, teacher_logits: Sequence[Tensor] = ()) -> Tensor:
        self.check_inputs(domain, teacher_logits)
        return torch.full(
            (domain.shape[0], self.num_teachers), 1.0 / self.num_teachers, device=domain.device
        )


class DomainTableWeighting(TeacherWeighting):
    """A fixed ``[D, T]`` table: a sample of domain ``d`` gets row ``d``.

    Args:
        table: non-negative weights, one row per domain (rows sum to 1).
        domain_names: names for error messages (default ``domain 0``, ...).
        normalize: divide each row by its sum instead of requiring it to be 1.
    """

    def __init__(
        self, table: Tensor, domain_names: Sequence[str] | None = None, normalize: bool = False
    ) -> None:
        table = torch.as_tensor(table, dtype=torch.float32)
        if table.dim() != 2 or table.shape[0] < 1 or table.shape[1] < 1:
            raise SignalError(
                f"teacher weight table must be 2-D [domains, teachers], got shape {list(table.shape)}"
            )
        super().__init__(table.shape[1])
        names = (
            list(domain_names)
            if domain_names is not None
            else [f"domain {d}" for d in range(table.shape[0])]
        )
        if len(names) != table.shape[0]:
            raise SignalError(
                f"teacher weight table has {table.shape[0]} rows but {len(names)} domain names were given"
            )
        self.domain_names = names
        for d, row in enumerate(table):
            name = names[d]
            if not torch.isfinite(row).all():
                raise SignalError(
                    f"teacher weight table row '{name}' holds NaN/inf: {row.tolist()}; refit or fix the weights"
                )
            if (row < 0).any():
                raise SignalError(
                    f"teacher weight table row '{name}' has negative weights {row.tolist()}; weights must be >= 0"
                )
            total = float(row.sum())
            if normalize and total > 0:
                continue
            if abs(total - 1.0) > 1e-4:
                raise SignalError(
                    f"teacher weight table row '{name}' sums to {total:.4g}, not 1: {row.tolist()}; "
                    "normalise each row (or pass normalize=True)"
                )
        if normalize:
            table = table / table.sum(dim=1, keepdim=True)
        self.register_buffer("table", table)

    def forward(self, domain: Tensor, teacher_logits: Sequence[Tensor] = ()) -> Tensor:
        self.check_inputs(domain, teacher_logits)
        domain = domain.long()
        bad = domain[(domain < 0) | (domain >= self.table.shape[0])]
        if bad.numel():
            raise DistillError(
                f"domain id {int(bad[0])} has no row in the teacher weight table (rows 0..{self.table.shape[0] - 1}: "
                f"{', '.join(self.domain_names)}); build the table over the same domain list as the dataset"
            )
        return self.table.to(domain.device)[domain]
