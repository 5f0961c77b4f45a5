"""Collators with the real MiniLM tokenizer, digit transforms and seeded augmentations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgkd.data import (
    ImageAugment,
    ImageCollator,
    MultiDomainDataset,
    TextAugment,
    TextCollator,
    blur,
    gaussian_noise,
    load_domain,
    load_minilm_tokenizer,
    normalize,
    random_shift,
    resize_digits,
    to_channels,
    token_dropout,
    typos,
    word_swap,
)
from kgkd.errors import ConfigError, DataError

SENTENCE = "the battery life of this phone is great and the screen is bright and sharp"


def test_text_collator_with_minilm_tokenizer() -> None:
    tok = load_minilm_tokenizer()
    data = MultiDomainDataset(
        [load_domain("imdb", "test", limit=3), load_domain("nyt_editorials", "test", limit=3)],
        "test",
    )
    items = [data[i] for i in range(len(data))]
    batch = TextCollator(tok, max_length=12)(items)
    assert set(batch) == {"input_ids", "attention_mask", "labels", "domain", "index"}
    assert (
        batch["input_ids"].shape == batch["attention_mask"].shape
        and batch["input_ids"].shape[0] == 6
    )
    assert batch["input_ids"].shape[1] <= 12 and batch["input_ids"].dtype == torch.long
    assert batch["domain"].tolist() == [0, 0, 0, 1, 1, 1] and batch["index"].tolist() == list(
        range(6)
    )
    assert batch["labels"].tolist() == [it["label"] for it in items]
    assert (batch["input_ids"][:, 0] == tok.cls_token_id).all()
    long_batch = TextCollator(tok, max_length=256)(items)
    assert long_batch["input_ids"].shape[1] > 12  # the editorial snippets are longer than 12 tokens


def test_image_collator_brings_every_domain_to_one_size() -> None:
    data = MultiDomainDataset(["mnist", "uci_digits"], "test")
    items = [data[0], data[1], data[2000], data[2001]]
    for size in (28, 16):
        batch = ImageCollator(size)(items)
        assert (
            batch["pixels"].shape == (4, 1, size, size) and batch["pixels"].dtype == torch.float32
        )
        assert 0.0 <= float(batch["pixels"].min()) and float(batch["pixels"].max()) <= 1.0
        assert batch["domain"].tolist() == [0, 0, 1, 1] and batch["index"].tolist() == [
            0,
            1,
            2000,
            2001,
        ]
    # an upsampled 8x8 digit keeps its overall brightness (bilinear, no smearing to black)
    small = items[2]["image"]
    assert abs(float(resize_digits(small, 28).mean()) - float(small.mean())) < 0.05
    normed = ImageCollator(28, transform=lambda x: normalize(x, 0.1307, 0.3081))(items[:2])[
        "pixels"
    ]
    assert float(normed.min()) == pytest.approx(-0.1307 / 0.3081, abs=1e-5)


def test_collators_reject_wrong_items() -> None:
    with pytest.raises(
        DataError,
        match="TextCollator expects items with a 'text' field, got keys \\['domain', 'image'",
    ):
        TextCollator(load_minilm_tokenizer())([load_domain("mnist", "test")[0]])
    with pytest.raises(DataError, match="ImageCollator got an empty batch"):
        ImageCollator()([])
    with pytest.raises(DataError, match="max_length=1 must be >= 2"):
        TextCollator(None, max_length=1)


def test_transforms_shapes_and_errors() -> None:
    x = torch.from_numpy(load_domain("uci_digits", "val", limit=4).images)  # uint8 [4,8,8]
    r = resize_digits(x, 28)
    assert r.shape == (4, 28, 28) and r.dtype == torch.float32 and float(r.max()) <= 1.0
    assert torch.equal(resize_digits(x, 8), x.float() / 255)
    rgb = to_channels(r.unsqueeze(1), 3)
    assert rgb.shape == (4, 3, 28, 28) and torch.allclose(to_channels(rgb, 1), r.unsqueeze(1))
    out = normalize(rgb, [0.5, 0.5, 0.5], [0.25, 0.5, 1.0])
    assert torch.allclose(out[:, 2], rgb[:, 2] - 0.5)
    with pytest.raises(ConfigError, match="resize_digits: size=0 must be a positive integer"):
        resize_digits(x, 0)
    with pytest.raises(ConfigError, match=r"normalize: std=\[1, 0\] must be positive"):
        normalize(rgb, 0.0, [1, 0])
    with pytest.raises(
        ConfigError, match=r"normalize: 2 channel means for input of shape \(4, 3, 28, 28\)"
    ):
        normalize(rgb, [0.1, 0.2], 1.0)
    with pytest.raises(ConfigError, match="to_channels: cannot turn 3 channels into 2"):
        to_channels(rgb, 2)


@pytest.mark.parametrize("fn", [token_dropout, word_swap, typos])
def test_text_augmentations_are_seeded_and_change_text(fn) -> None:
    a = fn(SENTENCE, 0.3, np.random.default_rng(7))
    b = fn(SENTENCE, 0.3, np.random.default_rng(7))
    c = fn(SENTENCE, 0.3, np.random.default_rng(8))
    assert a == b and a != SENTENCE and c != a
    assert fn(SENTENCE, 0.0, np.random.default_rng(0)) == SENTENCE
    with pytest.raises(
        ConfigError, match=rf"{fn.__name__}: p=1.5 must be a probability in \[0, 1\]"
    ):
        fn(SENTENCE, 1.5, np.random.default_rng(0))


def test_text_augmentation_invariants() -> None:
    words = SENTENCE.split()
    dropped = token_dropout(SENTENCE, 0.5, np.random.default_rng(0)).split()
    assert 0 < len(dropped) < len(words) and all(w in words for w in dropped)
    assert token_dropout(SENTENCE, 1.0, np.random.default_rng(0)) in words  # always keeps one token
    assert sorted(word_swap(SENTENCE, 1.0, np.random.default_rng(0)).split()) == sorted(words)
    aug = TextAugment("typos", 0.2, seed=3)
    data = load_domain("yelp", "test", limit=4, transform=aug)
    clean = load_domain("yelp", "test", limit=4)
    assert sum(data[i]["text"] != clean[i]["text"] for i in range(4)) >= 3
    with pytest.raises(
        ConfigError,
        match=r"unknown text augmentation 'typo'; use one of \['token_dropout', 'typos', 'word_swap'\]",
    ):
        TextAugment("typo", 0.1)


def test_image_augmentations_are_seeded_and_change_images() -> None:
    x = torch.stack([load_domain("mnist", "test")[i]["image"] for i in range(6)])  # [6,1,28,28]
    s1 = random_shift(x, 2, torch.Generator().manual_seed(0))
    s2 = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(s1, s2) and not torch.equal(s1, x) and s1.shape == x.shape
    # MNIST digits sit inside a blank 4-pixel border, so a 2-pixel shift loses no ink
    assert torch.allclose(s1.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)), atol=1e-4)
    n1 = gaussian_noise(x, 0.1, torch.Generator().manual_seed(1))
    assert torch.equal(n1, gaussian_noise(x, 0.1, torch.Generator().manual_seed(1)))
    assert not torch.equal(n1, gaussian_noise(x, 0.1, torch.Generator().manual_seed(2)))
    assert (
        0.0 <= float(n1.min())
        and float(n1.max()) <= 1.0
        and 0.02 < float((n1 - x).abs().mean()) < 0.1
    )
    b = blur(x, 1.0)
    tv = lambda t: float((t[..., 1:, :] - t[..., :-1, :]).abs().sum())
    assert tv(b) < 0.8 * tv(x) and torch.allclose(b.sum(), x.sum(), rtol=0.01)
    aug = ImageAugment(max_px=2, noise_std=0.05, seed=0)
    assert load_domain("mnist", "test", limit=2, transform=aug)[0]["image"].shape == (1, 28, 28)
    with pytest.raises(ConfigError, match="random_shift: max_px=-1 must be a non-negative integer"):
        random_shift(x, -1)
    with pytest.raises(ConfigError, match="gaussian_noise: std=-0.1 must be >= 0"):
        gaussian_noise(x, -0.1)
    with pytest.raises(ConfigError, match="blur: sigma=0 must be > 0"):
        blur(x, 0)
