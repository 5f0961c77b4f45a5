"""Inputs for a saved student: its recipe notes, its collator, and real samples to check exports on.

A student folder written by a recipe run holds ``kgkd_recipe.json`` (max_length,
image_size, domains); the helpers here fall back to the student's own config when it
is absent, so ``kgkd export`` and ``kgkd predict`` work on any saved student.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from kgkd.errors import DataError, KGKDError

META_NAME = "kgkd_recipe.json"


def read_meta(student_dir: str | Path) -> dict[str, Any]:
    """The recipe's notes next to the student (``kgkd_recipe.json``; empty if absent)."""
    file = Path(student_dir) / META_NAME
    if not file.is_file():
        return {}
    try:
        return dict(json.loads(file.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise DataError(f"{file} is not valid JSON ({exc}); re-run the recipe or delete the file") from None


def max_length_of(student: Any, meta: dict[str, Any]) -> int:
    """Token budget of a text student: the recipe's ``max_length``, capped by the student's positions."""
    own = int(getattr(student.config, "max_length", 512))
    return min(int(meta.get("max_length", own)), own)


def image_size_of(student: Any, meta: dict[str, Any]) -> int:
    """Side (pixels) the student was trained at."""
    return int(meta.get("image_size", getattr(student.config, "input_size", 28)))


def text_batch(texts: list[str], tokenizer: Any, max_length: int) -> dict[str, torch.Tensor]:
    """``input_ids``/``attention_mask`` of ``texts`` with the teachers' collator settings."""
    from kgkd.data import TextCollator

    items = [{"text": t, "label": -1, "domain": 0, "index": i} for i, t in enumerate(texts)]
    return TextCollator(tokenizer, max_length)(items)


def image_batch(images: list[torch.Tensor], size: int) -> dict[str, torch.Tensor]:
    """``pixels`` [B,1,size,size] of gray images [1,H,W] in 0..1."""
    from kgkd.data import ImageCollator

    items = [{"image": im, "label": -1, "domain": 0, "index": i} for i, im in enumerate(images)]
    return ImageCollator(size=size)(items)


def real_samples(student: Any, meta: dict[str, Any], n: int) -> list[Any]:
    """Up to ``n`` test-split inputs (texts or images) of the student's domains, else of any shipped one."""
    from kgkd.data import list_domains, load_domain

    modality = getattr(student, "modality", "text")
    wanted = [d for d in meta.get("domains", []) if isinstance(d, str)]
    names = wanted + [d for d in list_domains(modality, include_user=False) if d not in wanted]
    out: list[Any] = []
    for name in names:
        try:
            ds = load_domain(name, "test")
        except KGKDError:  # a domain whose data is not built here
            continue
        if ds.spec.modality != modality:
            continue
        take = min(len(ds), max(1, n // 4), n - len(out))
        out.extend(ds.texts[i] if modality == "text" else ds[i]["image"] for i in range(take))
        if len(out) >= n:
            break
    if not out:
        raise DataError(
            f"no {modality} test data found to check the export on; build it with `kgkd data build`"
        )
    return out
