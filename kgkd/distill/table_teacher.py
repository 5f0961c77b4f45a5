"""A teacher whose outputs are a precomputed table, looked up by ``batch["index"]``.

How a *weighted teacher mixture* reaches the engine when the weighting needs more than
the teachers' logits (calibration, sample features, per-fold teacher sets): the mixture
``Σ_t w_t p_t`` is computed once per training sample and its log is the table's logits,
so the engine's KD loss is exactly ``KL(mixture ‖ student)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from kgkd.errors import CacheError


class TableTeacher(nn.Module):
    """Stand-in teacher over a ``[N, C]`` table of probabilities (stored as log-probabilities)."""

    def __init__(self, name: str, probs: Tensor, label_names: Sequence[str]) -> None:
        super().__init__()
        if probs.dim() != 2 or probs.size(1) != len(label_names):
            raise CacheError(f"table teacher '{name}': probabilities {tuple(probs.shape)} do not fit "
                             f"{len(label_names)} labels")
        if not bool(torch.isfinite(probs).all()) or bool((probs < 0).any()):
            raise CacheError(f"table teacher '{name}': probabilities hold NaN/inf/negative values")
        self.name = name
        self.label_names = tuple(label_names)
        self.feature_names: tuple[str, ...] = ()
        self.register_buffer("logits", probs.float().clamp_min(1e-8).log())

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256(self.logits.numpy().tobytes()).hexdigest()[:16]

    def forward(self, batch: Mapping[str, Any]) -> Any:
        from kgkd.models.base import ModelOutput

        if "index" not in batch:
            raise CacheError(f"table teacher '{self.name}' needs batch['index']; use a collate_fn that keeps it")
        idx = torch.as_tensor(batch["index"]).long()
        if bool(((idx < 0) | (idx >= self.logits.size(0))).any()):
            raise CacheError(f"table teacher '{self.name}': sample index out of range 0..{self.logits.size(0) - 1}")
        return ModelOutput(self.logits[idx.to(self.logits.device)], {})
