"""Tensor transforms that let every digit domain feed every digit teacher.

Domains differ in size (MNIST 28x28, UCI 8x8) and teachers in input conventions (channels,
normalisation); these helpers bridge them on [..., H, W] / [B, C, H, W] tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from kgkd.errors import ConfigError


def _as_float(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(x)
    return t.float().div(255.0) if t.dtype == torch.uint8 else t.float()


def resize_digits(x: torch.Tensor | np.ndarray, size: int) -> torch.Tensor:
    """Resize images to ``size``x``size`` (bilinear), returning float in 0..1.

    Accepts [H,W], [C,H,W] or [B,C,H,W]; uint8 input (0..255) is scaled to 0..1 first.
    The output keeps the input's leading dims.
    """
    if not isinstance(size, int) or size < 1:
        raise ConfigError(f"resize_digits: size={size!r} must be a positive integer (e.g. 28)")
    t = _as_float(x)
    if t.ndim < 2 or t.ndim > 4:
        raise ConfigError(
            f"resize_digits: expected [H,W], [C,H,W] or [B,C,H,W], got shape {tuple(t.shape)}"
        )
    if tuple(t.shape[-2:]) == (size, size):
        return t
    lead = t.shape[:-2]
    flat = t.reshape(-1, 1, *t.shape[-2:])
    out = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False)
    return out.clamp_(0.0, 1.0).reshape(*lead, size, size)


def normalize(
    x: torch.Tensor, mean: float | Sequence[float], std: float | Sequence[float]
) -> torch.Tensor:
    """``(x - mean) / std`` with per-channel mean/std on dim -3 (or scalars)."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    if bool((s <= 0).any()):
        raise ConfigError(f"normalize: std={std!r} must be positive")
    if m.ndim == 1:
        if x.ndim < 3 or m.numel() not in (1, x.shape[-3]):
            raise ConfigError(
                f"normalize: {m.numel()} channel means for input of shape {tuple(x.shape)} (channels on dim -3)"
            )
        m = m.view(-1, 1, 1)
    if s.ndim == 1:
        if x.ndim < 3 or s.numel() not in (1, x.shape[-3]):
            raise ConfigError(
                f"normalize: {s.numel()} channel stds for input of shape {tuple(x.shape)} (channels on dim -3)"
            )
        s = s.view(-1, 1, 1)
    return (x - m) / s


def to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert [B,C,H,W] to ``channels`` channels: grey → RGB by repeating, RGB → grey by averaging."""
    if x.ndim != 4:
        raise ConfigError(f"to_channels: expected [B,C,H,W], got shape {tuple(x.shape)}")
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1:
        return x.expand(-1, channels, -1, -1).contiguous()
    if channels == 1:
        return x.mean(dim=1, keepdim=True)
    raise ConfigError(
        f"to_channels: cannot turn {c} channels into {channels}; only 1 <-> C is supported"
    )
