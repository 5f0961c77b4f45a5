"""Seeded robustness augmentations for distillation and noisy evaluation.

Text (word level, whitespace tokens): ``token_dropout``, ``word_swap``, ``typos``; each takes a
``numpy.random.Generator`` so the same seed gives the same corruption. Images ([..., H, W]
float tensors in 0..1): ``random_shift`` and ``gaussian_noise`` take a ``torch.Generator``;
``blur`` is deterministic. ``TextAugment`` / ``ImageAugment`` wrap one of them as a per-item
transform for ``load_domain(..., transform=...)``.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from kgkd.errors import ConfigError


def _check_p(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"{name}: p={p!r} must be a probability in [0, 1]")


# --- text --------------------------------------------------------------------
def token_dropout(text: str, p: float, rng: np.random.Generator) -> str:
    """Drop each whitespace token with probability ``p`` (at least one token is kept)."""
    _check_p("token_dropout", p)
    tokens = text.split()
    if len(tokens) <= 1:
        return text
    keep = rng.random(len(tokens)) >= p
    if not keep.any():
        keep[rng.integers(len(tokens))] = True
    return " ".join(t for t, k in zip(tokens, keep) if k)


def word_swap(text: str, p: float, rng: np.random.Generator) -> str:
    """Swap neighbouring tokens: walking left to right, each pair is swapped with probability ``p``."""
    _check_p("word_swap", p)
    tokens = text.split()
    i = 0
    while i < len(tokens) - 1:
        if rng.random() < p:
            tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
            i += 2
        else:
            i += 1
    return " ".join(tokens) if tokens else text


def typos(text: str, p: float, rng: np.random.Generator) -> str:
    """Corrupt each letter with probability ``p``: delete it, double it, swap it with the next, or replace it."""
    _check_p("typos", p)
    chars = list(text)
    out: list[str] = []
    i = 0
    while i < len(chars):
        ch = chars[i]
        if ch.isalpha() and rng.random() < p:
            kind = int(rng.integers(4))  # 0 delete, 1 double, 2 swap with next, 3 replace
            if kind == 1:
                out += [ch, ch]
            elif kind == 2 and i + 1 < len(chars):
                out += [chars[i + 1], ch]
                i += 1
            elif kind >= 2:  # replace (also a swap at the last character)
                out.append(string.ascii_lowercase[int(rng.integers(26))])
        else:
            out.append(ch)
        i += 1
    return "".join(out)


TEXT_AUGMENTATIONS: dict[str, Callable[[str, float, np.random.Generator], str]] = {
    "token_dropout": token_dropout,
    "word_swap": word_swap,
    "typos": typos,
}


# --- images ------------------------------------------------------------------
def random_shift(
    x: torch.Tensor, max_px: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each image in [..., H, W] by up to ``max_px`` pixels in x and y, filling with 0 (black)."""
    if not isinstance(max_px, int) or max_px < 0:
        raise ConfigError(f"random_shift: max_px={max_px!r} must be a non-negative integer")
    if x.ndim < 2:
        raise ConfigError(f"random_shift: expected [..., H, W], got shape {tuple(x.shape)}")
    if max_px == 0:
        return x.clone()
    h, w = x.shape[-2:]
    flat = x.reshape(-1, 1, h, w) if x.ndim > 3 else x.reshape(1, -1, h, w)
    padded = F.pad(flat, (max_px, max_px, max_px, max_px))
    shifts = torch.randint(0, 2 * max_px + 1, (flat.shape[0], 2), generator=generator)
    out = torch.stack(
        [padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(shifts.tolist())]
    )
    return out.reshape(x.shape)


def gaussian_noise(
    x: torch.Tensor, std: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Add N(0, std²) noise and clamp to 0..1."""
    if std < 0:
        raise ConfigError(f"gaussian_noise: std={std!r} must be >= 0")
    noise = torch.randn(
        x.shape, generator=generator, dtype=torch.float32
    )  # CPU draw: same on any device
    return (x + std * noise.to(device=x.device, dtype=x.dtype)).clamp_(0.0, 1.0)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [..., H, W] images (edges replicated)."""
    if sigma <= 0:
        raise ConfigError(f"blur: sigma={sigma!r} must be > 0")
    if x.ndim < 2:
        raise ConfigError(f"blur: expected [..., H, W], got shape {tuple(x.shape)}")
    radius = max(1, math.ceil(3 * sigma))
    coords = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    h, w = x.shape[-2:]
    flat = x.reshape(-1, 1, h, w)
    flat = F.pad(flat, (radius, radius, 0, 0), mode="replicate")
    flat = F.conv2d(flat, kernel.view(1, 1, 1, -1))
    flat = F.pad(flat, (0, 0, radius, radius), mode="replicate")
    flat = F.conv2d(flat, kernel.view(1, 1, -1, 1))
    return flat.reshape(x.shape)


class TextAugment:
    """Per-item text transform: ``TextAugment("word_swap", p=0.1, seed=0)(text)``; draws advance one seeded stream."""

    def __init__(self, kind: str, p: float, seed: int = 0) -> None:
        if kind not in TEXT_AUGMENTATIONS:
            raise ConfigError(
                f"unknown text augmentation '{kind}'; use one of {sorted(TEXT_AUGMENTATIONS)}"
            )
        _check_p(kind, p)
        self.fn, self.p, self.rng = TEXT_AUGMENTATIONS[kind], p, np.random.default_rng(seed)

    def __call__(self, text: str) -> str:
        return self.fn(text, self.p, self.rng)


class ImageAugment:
    """Per-item image transform: random shift of up to ``max_px`` then Gaussian noise of ``noise_std``."""

    def __init__(self, max_px: int = 2, noise_std: float = 0.0, seed: int = 0) -> None:
        if max_px < 0 or noise_std < 0:
            raise ConfigError(
                f"ImageAugment: max_px={max_px} and noise_std={noise_std} must be >= 0"
            )
        self.max_px, self.noise_std = max_px, noise_std
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        out = random_shift(image, self.max_px, self.generator)
        return gaussian_noise(out, self.noise_std, self.generator) if self.noise_std > 0 else out
