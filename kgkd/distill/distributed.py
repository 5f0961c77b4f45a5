"""Distributed helpers: one code path for a single process and for ``torchrun``.

``torchrun --nproc_per_node=N`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``;
:func:`init_distributed` reads them, starts a process group (NCCL on CUDA,
gloo on CPU) and returns a :class:`DistContext`. Without them it returns a
single-process context and every collective below is a no-op, so the engine
never branches on "am I distributed?" beyond asking the context.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sized
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from kgkd.errors import ConfigError
from kgkd.utils.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: rank, world size and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, shows progress and writes checkpoints."""
        return self.rank == 0


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto`` → this rank's CUDA device when there is one, else CPU."""
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                "engine config device='cuda' but no CUDA device is visible; use device='auto' or 'cpu'"
            )
        return torch.device("cuda", local_rank)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device_preference: str = "auto") -> DistContext:
    """Join the ``torchrun`` process group if launched by it, else a single-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if world_size > 1:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)
            log.info("joined process group: rank %d of %d (%s)", rank, world_size, backend)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op in a single process)."""
    if ctx.is_distributed:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``tensor`` over ranks (in place; returned for chaining)."""
    if ctx.is_distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Average ``tensor`` over ranks (in place; returned for chaining)."""
    if ctx.is_distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= ctx.world_size
    return tensor


def all_gather_varlen(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate 1-D/N-D tensors of different lengths (dim 0) from every rank, in rank order."""
    if not ctx.is_distributed:
        return tensor
    n = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.zeros_like(n) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, n)
    longest = int(max(int(s) for s in sizes))
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.zeros_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s)] for p, s in zip(parts, sizes)])


def cleanup(ctx: DistContext) -> None:
    """Leave the process group if this module joined one."""
    if ctx.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


class ResumableSampler(DistributedSampler):
    """A seeded ``DistributedSampler`` that can start mid-epoch.

    The order of epoch ``e`` is a permutation seeded by ``seed + e`` (same on
    every rank), then split by rank. ``skip(n)`` drops this rank's first ``n``
    samples of the current epoch, which is how a resumed run continues with
    exactly the samples the interrupted one had not seen yet.
    """

    def __init__(self, dataset: Sized, ctx: DistContext, seed: int, shuffle: bool = True) -> None:
        super().__init__(
            dataset,  # type: ignore[arg-type]
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=False,
        )
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self._skip = 0

    def skip(self, n: int) -> None:
        """Leave out the first ``n`` samples of this rank's share of the current epoch."""
        self._skip = n

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self._skip :])

    def __len__(self) -> int:
        return max(0, self.num_samples - self._skip)


class ShardSampler(torch.utils.data.Sampler[int]):
    """Evaluation sampler: rank r takes indices r, r+N, … — no padding, so no duplicates."""

    def __init__(self, dataset: Sized, ctx: DistContext) -> None:
        self._indices = list(range(ctx.rank, len(dataset), ctx.world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices)

    def __len__(self) -> int:
        return len(self._indices)
