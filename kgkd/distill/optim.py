"""Optimiser and LR-scheduler construction for the distillation engine.

The engine's parameters (student + loss parameters such as feature projectors)
go to AdamW or SGD; the learning rate follows :class:`LRFactor` (linear warm-up,
then cosine / linear decay to 0, or constant) through a ``LambdaLR``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kgkd.distill.config import EngineConfig


class LRFactor:
    """LR multiplier per step: linear warm-up, then cosine / linear decay to 0, or constant.

    A plain object (not a closure) so the scheduler's state stays JSON-serialisable.
    """

    def __init__(self, kind: str, warmup_steps: int, total_steps: int) -> None:
        self.kind = kind
        self.warmup_steps = warmup_steps
        self.total_steps = max(1, total_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.kind == "constant":
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        t = min(1.0, (step - self.warmup_steps) / span)
        if self.kind == "linear":
            return 1.0 - t
        return 0.5 * (1.0 + math.cos(math.pi * t))


def build_optimizer(params: list[nn.Parameter], cfg: EngineConfig) -> torch.optim.Optimizer:
    """``cfg.optimizer`` (adamw / sgd) over ``params`` with the config's lr and weight decay."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: EngineConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-step LR schedule of ``cfg.scheduler`` with ``cfg.warmup_steps`` over ``total_steps``."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, LRFactor(cfg.scheduler, cfg.warmup_steps, total_steps)
    )
