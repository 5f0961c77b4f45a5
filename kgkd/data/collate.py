"""Collators: lists of domain-tagged items → model-ready batches.

Both keep ``labels``, ``domain`` and ``index`` as int64 tensors so the engine can route
per-domain weights and look samples up in the teacher cache. A model with its own input
pipeline (``Teacher.collator()``) builds its collator on :func:`check_items` / :func:`batch_tags`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from kgkd.data.transforms import resize_digits
from kgkd.errors import DataError


def batch_tags(items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """``labels``, ``domain`` and ``index`` of ``items`` as int64 tensors (every collator adds them)."""
    return {
        "labels": torch.tensor([int(it["label"]) for it in items], dtype=torch.long),
        "domain": torch.tensor([int(it["domain"]) for it in items], dtype=torch.long),
        "index": torch.tensor([int(it["index"]) for it in items], dtype=torch.long),
    }


def check_items(items: Sequence[dict[str, Any]], key: str, who: str) -> None:
    """DataError when ``items`` is empty or its items lack ``key`` (``who`` names the collator)."""
    if not items:
        raise DataError(f"{who} got an empty batch")
    if key not in items[0]:
        raise DataError(f"{who} expects items with a '{key}' field, got keys {sorted(items[0])}")


class TextCollator:
    """Tokenise a batch of text items with a Hugging Face tokenizer.

    Returns ``{"input_ids", "attention_mask", "labels", "domain", "index"}``; padding is to
    the longest item, truncation at ``max_length`` tokens.
    """

    def __init__(self, tokenizer: Any, max_length: int = 64) -> None:
        if max_length < 2:
            raise DataError(
                f"TextCollator: max_length={max_length} must be >= 2 (room for [CLS] and [SEP])"
            )
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        check_items(items, "text", "TextCollator")
        enc = self.tokenizer(
            [it["text"] for it in items],
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        batch.update(batch_tags(items))
        return batch


class ImageCollator:
    """Stack image items into ``pixels`` [B,1,size,size] (float 0..1), resizing bilinearly.

    Every digit domain is brought to one size, so any domain can feed any teacher; an
    optional ``transform`` runs on the stacked batch (e.g. ``normalize``).
    """

    def __init__(
        self, size: int = 28, transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> None:
        if size < 1:
            raise DataError(f"ImageCollator: size={size} must be a positive integer")
        self.size = size
        self.transform = transform

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        check_items(items, "image", "ImageCollator")
        pixels = torch.stack([resize_digits(it["image"], self.size) for it in items])
        if pixels.ndim == 3:
            pixels = pixels.unsqueeze(1)
        if self.transform is not None:
            pixels = self.transform(pixels)
        batch: dict[str, Any] = {"pixels": pixels}
        batch.update(batch_tags(items))
        return batch
