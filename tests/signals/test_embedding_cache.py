"""Cached text embeddings (``TextEmbedder``): NaN/inf, wrong-shaped or cut-off files are recomputed, named."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from kgkd.signals.features import TEXT_DIM, TextEmbedder

TEXTS = ["a gripping thriller with a weak ending", "the battery died after two days"]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> TextEmbedder:
    return TextEmbedder(cache=tmp_path_factory.mktemp("text_embeddings"))


@pytest.fixture(scope="module")
def reference(embedder: TextEmbedder) -> torch.Tensor:
    return embedder.embed(TEXTS)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: save_file({"embedding": torch.full((TEXT_DIM,), float("nan"))}, str(f)), "holds NaN/inf"),
        (lambda f: save_file({"embedding": torch.tensor([float("inf")] * TEXT_DIM)}, str(f)), "holds NaN/inf"),
        (lambda f: save_file({"embedding": torch.zeros(7)}, str(f)), "has shape [7], not [384]"),
        (lambda f: f.write_bytes(f.read_bytes()[:100]), "ignoring unreadable text-embedding cache file"),
    ],
    ids=["nan", "inf", "shape", "truncated"],
)
def test_bad_cache_file_is_recomputed_and_named(
    embedder: TextEmbedder, reference: torch.Tensor, damage, message: str, caplog: pytest.LogCaptureFixture,
    one_thread: None,
) -> None:
    path: Path = embedder.cache / f"{embedder.key(TEXTS[1])}.safetensors"
    assert path.is_file()
    damage(path)
    with caplog.at_level(logging.WARNING, logger="kgkd"):
        again = embedder.embed(TEXTS)
    assert any(message in r.getMessage() and str(path) in r.getMessage() for r in caplog.records), caplog.text
    assert torch.isfinite(again).all()
    # recomputed alone vs in a batch of two: padding differs, so a stated tolerance, not equality
    torch.testing.assert_close(again, reference, atol=1e-5, rtol=1e-4)
    stored = load_file(str(path))["embedding"]
    assert stored.shape == (TEXT_DIM,) and torch.isfinite(stored).all()
