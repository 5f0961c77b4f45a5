"""Batch → network input for image teachers: resize, re-channel, normalise.

kgkd's image collator yields ``batch["pixels"]``: ``[B, 1, H, W]`` floats in 0..1, white
digit on black (MNIST convention). Each pretrained net expects its own resolution,
channel count and mean/std; :class:`ImagePreprocess` holds those constants (they are part
of the teacher's fingerprint) and converts a batch on the fly with the shared tensor
transforms of :mod:`kgkd.data.transforms`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor

from kgkd.data.transforms import normalize, resize_digits, to_channels
from kgkd.errors import ModelError


@dataclass(frozen=True)
class ImagePreprocess:
    """Resize ``pixels`` to ``size``×``size`` (bilinear), set ``channels``, then ``(x - mean) / std``.

    Attributes:
        size: side length the network expects.
        channels: 1 (grayscale) or 3 (RGB: the gray image is repeated).
        mean: per-channel mean (length ``channels``).
        std: per-channel std (length ``channels``).
        invert: map ``x → 1 - x`` first (for nets trained on dark-on-light digits).
    """

    size: int
    channels: int = 1
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    invert: bool = False

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ModelError(f"ImagePreprocess: channels must be 1 or 3, got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ModelError(
                f"ImagePreprocess: mean {self.mean} / std {self.std} need one value per channel ({self.channels})"
            )

    def __call__(self, batch: dict[str, Tensor]) -> Tensor:
        if "pixels" not in batch:
            raise ModelError(
                f"image model needs batch['pixels'] ([B,1,H,W] in 0..1) but the batch has keys {sorted(batch)}; "
                "collate with kgkd.data.ImageCollator"
            )
        return self.transform(batch["pixels"])

    def transform(self, pixels: Tensor) -> Tensor:
        """Convert ``[B, C, H, W]`` (or ``[B, H, W]``) floats in 0..1 to the network input."""
        x = pixels.float()
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if x.dim() != 4:
            raise ModelError(
                f"image batch must be [B,1,H,W] or [B,H,W], got shape {tuple(pixels.shape)}"
            )
        if self.invert:
            x = 1.0 - x
        x = to_channels(resize_digits(x, self.size), self.channels)
        return normalize(x, list(self.mean), list(self.std))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for config files and fingerprints)."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d
