"""Checkpoint bookkeeping of a training run: what a checkpoint holds and how it is put back.

A checkpoint (file format in :mod:`kgkd.distill.checkpoint`) holds everything a
bit-identical resume needs: student and loss weights, optimiser, LR scheduler,
gradient scaler, RNG states, the history so far, and the position in the seeded
data order (epoch + batches done in it). :class:`TrainingParts` names the
mutable pieces; :func:`save_state` / :func:`restore_state` move them to and
from a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kgkd.distill import checkpoint as ckpt
from kgkd.distill.config import EngineConfig
from kgkd.errors import CheckpointError, DistillError
from kgkd.utils.logging import get_logger

log = get_logger(__name__)


@dataclass
class TrainingParts:
    """The mutable pieces of a run that a checkpoint saves and restores."""

    student: nn.Module
    loss: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler


def save_state(
    parts: TrainingParts,
    config: EngineConfig,
    *,
    world_size: int,
    step: int,
    epoch: int,
    position: int,
    history: dict[str, Any],
) -> Path:
    """Write a checkpoint of ``parts`` at ``step`` into ``config.checkpoint_dir``; return its JSON path."""
    assert config.checkpoint_dir is not None
    opt_tensors, opt_meta = ckpt.flatten_optimizer(parts.optimizer.state_dict())
    tensors = {
        **{f"student/{k}": v for k, v in parts.student.state_dict().items()},
        **{f"loss/{k}": v for k, v in parts.loss.state_dict().items()},
        **opt_tensors,
    }
    meta = {
        "world_size": world_size,
        "sampler_seed": config.seed,
        "config": config.to_dict(),
        "optimizer": opt_meta,
        "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "history": history,
    }
    return ckpt.save_checkpoint(
        config.checkpoint_dir,
        step=step,
        epoch=epoch,
        position=position,
        tensors=tensors,
        meta=meta,
        keep=config.keep_checkpoints,
    )


def find_state(
    resume_from: str | Path | None, checkpoint_dir: str | None
) -> ckpt.TrainingState | None:
    """The checkpoint ``resume_from`` names: a JSON file, a folder (→ newest), or ``"auto"``.

    ``"auto"`` is the newest checkpoint in ``checkpoint_dir``, or None when there is none yet.
    """
    if resume_from is None:
        return None
    if str(resume_from) == "auto":
        if not checkpoint_dir:
            raise DistillError("resume_from='auto' needs config.checkpoint_dir")
        newest = ckpt.latest_checkpoint(checkpoint_dir)
        return None if newest is None else ckpt.load_checkpoint(newest)
    return ckpt.load_checkpoint(resume_from)


def restore_state(
    parts: TrainingParts, state: ckpt.TrainingState, world_size: int
) -> dict[str, Any]:
    """Put ``state`` back into ``parts`` and the RNGs; return the saved history mapping.

    The data position (``state.epoch``, ``state.position``) and ``state.step`` are the
    caller's to continue from.
    """
    where = state.meta.get("tensor_file", "checkpoint")
    if state.meta.get("world_size") != world_size:
        raise CheckpointError(
            f"checkpoint '{where}' was written by {state.meta.get('world_size')} process(es) but this run has "
            f"{world_size}; resume with the same --nproc_per_node so the data order matches"
        )
    try:
        parts.student.load_state_dict(state.module_state("student"))
        parts.loss.load_state_dict(state.module_state("loss"))
        parts.optimizer.load_state_dict(
            ckpt.unflatten_optimizer(state.tensors, state.meta["optimizer"])
        )
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint '{where}' does not fit this student/loss/optimiser: {exc}; "
            "resume with the same model and loss that wrote it"
        ) from None
    parts.scheduler.load_state_dict(state.meta["scheduler"])
    parts.scaler.load_state_dict(state.meta.get("scaler") or {})
    history = state.meta.get("history") or {}
    ckpt.restore_rng(state.tensors, state.meta["rng"])
    log.info(
        "resumed from step %d (epoch %d, batch %d)", state.step, state.epoch + 1, state.position
    )
    return history


def position_after_fit(
    steps: list[dict[str, Any]], epoch: int, reached_max_steps: bool, steps_per_epoch: int
) -> int:
    """Batches done in ``epoch`` when ``fit`` ends (all of them unless ``max_steps`` cut it short)."""
    if reached_max_steps:
        return sum(1 for s in steps if s["epoch"] == epoch)
    return steps_per_epoch
