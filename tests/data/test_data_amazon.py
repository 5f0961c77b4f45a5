"""The Amazon multi-domain sentiment domains (books, dvd, electronics, kitchen): shipped files,
reader, raw-file lookup and checksum, and their nodes in graphs/sentiment.ttl."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from kgkd.data import list_domains, load_domain
from kgkd.data.build import (
    AMAZON_MULTIDOMAIN_ENV,
    AMAZON_MULTIDOMAIN_SHARED,
    amazon_multidomain_dirs,
    build_domains,
)
from kgkd.data.sources import AMAZON_MULTIDOMAIN_SHA256, read_amazon_multidomain
from kgkd.data.storage import sha256_file
from kgkd.errors import DataError
from kgkd.graph import KnowledgeGraph
from kgkd.paths import graphs_dir, repo_root

DATA = repo_root() / "data"
MANIFEST = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
AMAZON = ["books", "dvd", "electronics", "kitchen"]
HAVE_RAW = any((d / "kitchen.txt.gz").is_file() for d in amazon_multidomain_dirs(DATA / "raw"))


def _raw_file(tmp_path: Path, lines: list[str], name: str = "books.txt.gz") -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress("".join(line + "\n" for line in lines).encode("utf-8")))
    return path


@pytest.mark.parametrize("name", AMAZON)
def test_shipped_domain_counts_balance_and_disjoint_splits(name: str) -> None:
    entry = MANIFEST["domains"][name]
    assert sha256_file(DATA / entry["file"]) == entry["sha256"] and entry["total"] == 2000
    splits = {s: load_domain(name, s) for s in ("train", "val", "test")}
    assert {s: d.class_counts() for s, d in splits.items()} == {
        "train": [600, 600],
        "val": [200, 200],
        "test": [200, 200],
    }
    with gzip.open(DATA / entry["file"], "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    ids = {s: {r["id"] for r in rows if r["split"] == s} for s in splits}
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    assert len(set().union(*ids.values())) == 2000
    lengths = np.array([len(t.split()) for t in splits["train"].texts])
    assert lengths.mean() > 80  # documents, not sentences
    assert all(t == t.lower() for t in splits["val"].texts[:50])  # kept as released (lower-cased)
    assert entry["source"]["file_sha256"].startswith(AMAZON_MULTIDOMAIN_SHA256[name])
    assert entry["licence"] == "no explicit licence; widely redistributed for research"
    assert (
        "Blitzer" in entry["citation"]
        and "Ziser" in entry["citation"]
        and "Guo" in entry["citation"]
    )


def test_registry_and_data_card() -> None:
    assert set(AMAZON) <= set(list_domains("text"))
    card = (DATA / "README.md").read_text(encoding="utf-8")
    assert (
        "| `books` | text | 2,000 | 1,200 | 400 | 400 | — | no explicit licence; widely redistributed for research |"
        in card
    )
    assert "`jiangfeng1124/transfer` e58291cafd0aa07017db371a22be2ecaf4a08dcd" in card
    assert "$KGKD_AMAZON_MULTIDOMAIN_DIR" in card


def test_reader_parses_labels_and_checks_sha256(tmp_path: Path) -> None:
    lines = ["1 great  book . loved it", "0 do n't buy &amp; skip", "", "1 fine ."]
    path = _raw_file(tmp_path, lines)
    digest = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    rows, checksum = read_amazon_multidomain(path, "books", digest[:16])
    assert checksum == digest and rows.labels == [1, 0, 1]
    assert rows.texts == ["great book . loved it", "do n't buy & skip", "fine ."]
    assert rows.ids == ["books-0001", "books-0002", "books-0004"]
    with pytest.raises(
        DataError,
        match=r"books\.txt\.gz: sha256 of the uncompressed file is [0-9a-f]{16}\.\.\., expected 2226688172a50f8b",
    ):
        read_amazon_multidomain(path, "books", AMAZON_MULTIDOMAIN_SHA256["books"])
    bad = _raw_file(tmp_path, ["2 what"], "dvd.txt.gz")
    bad_digest = hashlib.sha256(gzip.decompress(bad.read_bytes())).hexdigest()
    with pytest.raises(DataError, match=r"dvd\.txt\.gz line 1: label '2' is not 0 or 1"):
        read_amazon_multidomain(bad, "dvd", bad_digest[:16])


def test_build_without_raw_files_names_the_folder_and_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no_raw"
    empty.mkdir()
    monkeypatch.setenv(AMAZON_MULTIDOMAIN_ENV, str(empty))
    with pytest.raises(
        DataError, match=rf"no books\.txt\.gz .* in {empty}; .*\$KGKD_AMAZON_MULTIDOMAIN_DIR"
    ):
        build_domains(only=["books"], out_dir=tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert len(load_domain("books", "test")) == 400  # the committed file needs no raw data
    monkeypatch.delenv(AMAZON_MULTIDOMAIN_ENV)
    dirs = amazon_multidomain_dirs(tmp_path / "raw")
    assert dirs[0] == tmp_path / "raw" / "amazon_multidomain" and AMAZON_MULTIDOMAIN_SHARED in dirs


def test_build_refuses_an_edited_raw_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _raw_file(tmp_path, ["1 an edited review ."], "kitchen.txt.gz")
    monkeypatch.setenv(AMAZON_MULTIDOMAIN_ENV, str(tmp_path))
    with pytest.raises(
        DataError,
        match=r"kitchen\.txt\.gz: sha256 .* expected b551726798262f9e.*not the released 'kitchen' data",
    ):
        build_domains(only=["kitchen"], out_dir=tmp_path / "out", show_progress=False)


@pytest.mark.skipif(not HAVE_RAW, reason="raw Amazon multi-domain files not present")
def test_rebuild_from_raw_reproduces_the_shipped_file(tmp_path: Path) -> None:
    entry = build_domains(only=["kitchen"], out_dir=tmp_path, show_progress=False)["kitchen"]
    shipped = MANIFEST["domains"]["kitchen"]
    assert entry["sha256"] == shipped["sha256"] and entry["counts"] == shipped["counts"]


def test_sentiment_graph_has_the_amazon_nodes_and_one_teacher_per_text_domain() -> None:
    kg = KnowledgeGraph.from_file(graphs_dir() / "sentiment.ttl").validate()
    for name in AMAZON:
        node = kg.domain(name)
        assert node.modality == "text" and node.label_set == "sentiment_binary"
        assert "Amazon" in node.description and "words" in node.description
        assert node.attributes["isReview"] == 1.0 and node.attributes["avgLength"] > 100
    rows = kg.query(
        "SELECT ?a ?b ?w WHERE { ?a kgkd:similarTo [ kgkd:target ?b ; kgkd:weight ?w ] }"
    )
    weights = {(r["a"].rsplit("#", 1)[1], r["b"].rsplit("#", 1)[1]): r["w"] for r in rows}
    assert weights[("books", "dvd")] == pytest.approx(0.8)
    assert weights[("electronics", "kitchen")] == pytest.approx(0.8)
    assert weights[("kitchen", "electronics")] == pytest.approx(0.8)
    assert {
        ("electronics", "amazon"),
        ("electronics", "product_reviews"),
        ("kitchen", "amazon"),
    } <= set(weights)
    trained = {d for t in kg.teachers() for d in t.trained_on}
    assert trained == set(list_domains("text", include_user=False))


def test_full_rebuild_skips_amazon_domains_without_raw_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from kgkd.data import build as build_module

    monkeypatch.setenv(AMAZON_MULTIDOMAIN_ENV, str(tmp_path / "nowhere"))
    monkeypatch.setattr(
        build_module, "default_domains", lambda fashion=False: ["books", "uci_digits"]
    )
    with caplog.at_level("WARNING", logger="kgkd.data.build"):
        entries = build_domains(out_dir=tmp_path / "out", show_progress=False)
    assert list(entries) == ["uci_digits"]
    assert (
        "skipping books: no raw files in" in caplog.text
        and "KGKD_AMAZON_MULTIDOMAIN_DIR" in caplog.text
    )
