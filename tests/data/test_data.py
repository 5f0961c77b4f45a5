"""The shipped data: manifest and data card agree with what the loaders return; loader errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from kgkd.data import DOMAINS, MultiDomainDataset, get_spec, list_domains, load_domain
from kgkd.data.card import render_card
from kgkd.data.storage import sha256_file
from kgkd.errors import DataError, MissingDataError, UnknownDatasetError
from kgkd.paths import repo_root

DATA = repo_root() / "data"
MANIFEST = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
SHIPPED = [n for n in DOMAINS.names() if get_spec(n).shipped]
TEXT = ["amazon", "imdb", "yelp", "tweets", "movie_reviews", "product_reviews", "nyt_editorials",
        "books", "dvd", "electronics", "kitchen"]  # fmt: skip
ROTATED = [f"rmnist_{a}" for a in (0, 15, 30, 45, 60, 75)]


def test_registry_lists_the_contract_domains() -> None:
    assert sorted(list_domains("text")) == sorted(TEXT)
    assert list_domains("image") == sorted(["fashion_mnist", "mnist", "uci_digits", *ROTATED])
    assert sorted(MANIFEST["domains"]) == sorted(SHIPPED)
    assert get_spec("yelp").label_names == ("negative", "positive")


@pytest.mark.parametrize("name", SHIPPED)
def test_manifest_counts_match_loaders(name: str) -> None:
    entry = MANIFEST["domains"][name]
    assert sha256_file(DATA / entry["file"]) == entry["sha256"]
    total = 0
    for split in ("train", "val", "test"):
        ds = load_domain(name, split)
        counts = entry["counts"][split]
        assert len(ds) == counts["total"]
        assert ds.class_counts() == list(counts["per_class"].values())
        total += len(ds)
    assert total == entry["total"]


@pytest.mark.parametrize("name", SHIPPED)
def test_splits_are_stratified_60_20_20(name: str) -> None:
    per = {s: np.array(load_domain(name, s).class_counts()) for s in ("train", "val", "test")}
    whole = sum(per.values())
    for split, share in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        assert np.all(np.abs(per[split] - share * whole) <= 1.0), (split, per[split], whole)


def test_known_source_sizes_and_dropped_neutrals() -> None:
    d = MANIFEST["domains"]
    for name in ("amazon", "imdb", "yelp"):
        assert d[name]["total"] == 1000 and d[name]["counts"]["train"]["per_class"] == {
            "negative": 300,
            "positive": 300,
        }
    source_rows = {
        "tweets": 4200,
        "movie_reviews": 10605,
        "product_reviews": 3708,
        "nyt_editorials": 5190,
    }
    for name, rows in source_rows.items():
        assert d[name]["total"] + d[name]["dropped"]["neutral"] == rows
    assert d["mnist"]["total"] == 10000 and d["mnist"]["shape"] == [28, 28]
    assert d["uci_digits"]["total"] == 1797 and d["uci_digits"]["shape"] == [8, 8]


def test_data_card_is_rendered_from_manifest() -> None:
    card = (DATA / "README.md").read_text(encoding="utf-8")
    assert card == render_card(MANIFEST)
    assert "| `tweets` | text | 4,196 | 2,517 | 839 | 840 | neutral: 4 | MIT |" in card


def test_text_splits_are_disjoint() -> None:
    import gzip

    with gzip.open(DATA / "text" / "imdb.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    ids = {s: {r["id"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert (
        not (ids["train"] & ids["val"])
        and not (ids["train"] & ids["test"])
        and not (ids["val"] & ids["test"])
    )
    assert len(set().union(*ids.values())) == len(rows) == 1000


def test_items_are_well_formed() -> None:
    text = load_domain("yelp", "val", domain_id=3)
    item = text[5]
    assert set(item) == {"text", "label", "domain", "index"}
    assert isinstance(item["text"], str) and item["text"] == item["text"].strip() and item["text"]
    assert item["label"] in (0, 1) and item["domain"] == 3 and item["index"] == 5
    for name, size in (("mnist", 28), ("uci_digits", 8)):
        img = load_domain(name, "test")[0]
        assert set(img) == {"image", "label", "domain", "index"}
        assert img["image"].dtype == torch.float32 and img["image"].shape == (1, size, size)
        assert 0.0 <= float(img["image"].min()) and float(img["image"].max()) <= 1.0
        assert float(img["image"].max()) > 0.5  # white digit on black background
        assert float(img["image"][0, 0, 0]) == 0.0


def test_limit_gives_seeded_stratified_subset() -> None:
    a = load_domain("movie_reviews", "train", limit=20, seed=0)
    b = load_domain("movie_reviews", "train", limit=20, seed=0)
    c = load_domain("movie_reviews", "train", limit=20, seed=1)
    assert len(a) == 20 and a.class_counts() == [10, 10]
    assert a.texts == b.texts and a.texts != c.texts
    full = load_domain("movie_reviews", "train")
    assert a.fingerprint() == b.fingerprint()
    assert (
        len(
            {
                a.fingerprint(),
                c.fingerprint(),
                full.fingerprint(),
                load_domain("movie_reviews", "val").fingerprint(),
            }
        )
        == 4
    )
    digits, whole = load_domain("mnist", "train", limit=50), load_domain("mnist", "train")
    share = np.array(whole.class_counts()) / len(whole) * 50
    assert np.all(
        np.abs(np.array(digits.class_counts()) - share) < 1.0
    ) and digits.images.shape == (50, 28, 28)
    assert (
        load_domain("amazon", "test", limit=10_000).fingerprint()
        == load_domain("amazon", "test").fingerprint()
    )


def test_multi_domain_dataset_tags_domain_and_global_index() -> None:
    parts = [load_domain("amazon", "test"), load_domain("tweets", "test", limit=30)]
    multi = MultiDomainDataset(parts, "test")
    assert multi.domain_names == ["amazon", "tweets"] and len(multi) == 230
    item = multi[215]
    assert item["domain"] == 1 and item["index"] == 215 and item["text"] == parts[1].texts[15]
    assert multi[-1]["index"] == 229
    assert multi.domains.tolist() == [0] * 200 + [1] * 30
    by_name = MultiDomainDataset(["mnist", "uci_digits"], "val")
    assert (
        len(by_name) == 2000 + 359
        and by_name[2000]["domain"] == 1
        and by_name[2000]["image"].shape == (1, 8, 8)
    )
    assert multi.fingerprint() != MultiDomainDataset(parts[::-1], "test").fingerprint()


# --- errors ------------------------------------------------------------------
def test_unknown_domain_suggests_closest_name() -> None:
    with pytest.raises(
        UnknownDatasetError,
        match=r"unknown data domain 'mnsit'\. Did you mean 'mnist'\?.*Known domains: .*yelp",
    ):
        load_domain("mnsit")


def test_bad_split_limit_modality() -> None:
    with pytest.raises(
        DataError, match=r"unknown split 'training'; use one of \['train', 'val', 'test'\]"
    ):
        load_domain("amazon", "training")
    with pytest.raises(DataError, match=r"limit=0 for domain 'amazon' must be a positive integer"):
        load_domain("amazon", limit=0)
    with pytest.raises(DataError, match=r"unknown modality 'audio'"):
        list_domains("audio")
    with pytest.raises(DataError, match=r"mixes modalities \['image', 'text'\].*amazon=text"):
        MultiDomainDataset(["amazon", "mnist"])
    with pytest.raises(IndexError, match="out of range for domain 'amazon'"):
        load_domain("amazon", "test")[200]


def test_missing_file_names_the_build_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KGKD_DATA_DIR", str(tmp_path))
    with pytest.raises(
        MissingDataError,
        match=r"text/imdb\.jsonl\.gz of domain 'imdb' is missing; build it with `kgkd data build --only imdb`",
    ):
        load_domain("imdb")
    with pytest.raises(
        MissingDataError, match=r"fashion_mnist\.npz.*build it with `kgkd data build --fashion`"
    ):
        load_domain("fashion_mnist")


def test_corrupt_file_is_detected_with_and_without_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "text").mkdir()
    target = tmp_path / "text" / "amazon.jsonl.gz"
    target.write_bytes((DATA / "text" / "amazon.jsonl.gz").read_bytes()[:-40])  # truncated download
    monkeypatch.setenv("KGKD_DATA_DIR", str(tmp_path))
    with pytest.raises(
        MissingDataError,
        match=r"amazon\.jsonl\.gz is corrupt .*rebuild it with `kgkd data build --only amazon`",
    ):
        load_domain("amazon")
    shutil.copy(DATA / "manifest.json", tmp_path / "manifest.json")
    with pytest.raises(
        MissingDataError,
        match=r"amazon\.jsonl\.gz does not match the sha256 in .*manifest\.json.*--only amazon",
    ):
        load_domain("amazon")
    (tmp_path / "digits").mkdir()
    np.savez(tmp_path / "digits" / "uci.npz", x_train=np.zeros((2, 8, 8), np.uint8))
    shutil.move(tmp_path / "digits" / "uci.npz", tmp_path / "digits" / "uci_digits.npz")
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(
        MissingDataError, match=r"uci_digits\.npz lacks array 'y_train'.*--only uci_digits"
    ):
        load_domain("uci_digits")
