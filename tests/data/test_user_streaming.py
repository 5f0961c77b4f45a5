"""Streaming user domains: files are indexed by byte offset and read lazily in bounded memory; absurd
lines and CSV fields over the csv module's limit are refused with messages that say so."""

from __future__ import annotations

import csv
import gzip
import json
import pickle
import tracemalloc
from pathlib import Path

import pytest

from kgkd.data.user import add_user_domain, user_data_dir
from kgkd.data.user_files import LazyTexts, read_user_file
from kgkd.errors import DataError

LABELS = ("negative", "positive")


@pytest.fixture(autouse=True)
def _own_user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Domains added here live in this test's folder only (other tests list the user domains)."""
    monkeypatch.setenv("KGKD_USER_DATA_DIR", str(tmp_path / "user_data"))


def _review(i: int, repeat: int = 400) -> str:
    return f"review {i}: " + ("good " if i % 2 else "bad ") * repeat  # ~2 KB, a long product review


def _big_jsonl(path: Path, n: int, repeat: int = 400) -> list[int]:
    """``n`` JSONL reviews of ~``repeat`` × 5 bytes; returns the line numbers (0-based) of a few probes."""
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            text = _review(i, repeat)
            fh.write(json.dumps({"text": text, "label": LABELS[i % 2], "id": i}) + "\n")
    return [0, 1, n // 2, n - 1]


def test_large_jsonl_is_indexed_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    probes = _big_jsonl(path, 2_500, repeat=1_000)  # ~4 KB a line, 12 MB
    size = path.stat().st_size
    tracemalloc.start()
    rows = read_user_file(path, label_names=LABELS)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size > 10_000_000 and peak < size / 20  # offsets + labels (16 bytes/sample), never the texts
    assert isinstance(rows.texts, LazyTexts) and len(rows) == 2_500 and rows.num_labelled == 2_500
    for i in probes:
        assert rows.texts[i] == _review(i, 1_000).strip()
        assert rows.labels[i] == i % 2
    again = pickle.loads(pickle.dumps(rows.texts))  # DataLoader workers get their own file handle
    assert again[probes[-1]] == rows.texts[probes[-1]]


def test_add_streams_in_bounded_memory_with_a_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warm = tmp_path / "warm.jsonl"
    _big_jsonl(warm, 20)
    add_user_domain("warm_up", warm)  # first call imports modules: not part of what is measured
    path = tmp_path / "big.jsonl"
    _big_jsonl(path, 2_500, repeat=1_000)  # ~4 KB a line, 12 MB
    tracemalloc.start()
    entry = add_user_domain("big_reviews", path, show_progress=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # a whole-file read would need more than the file's size; streaming: 1 MiB checksum chunks + buffers
    assert entry["total"] == 2_500 and path.stat().st_size > 10_000_000 and peak < 4_000_000
    assert "reading big.jsonl" in capsys.readouterr().err
    with gzip.open(user_data_dir() / entry["file"], "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    assert first["text"].startswith("review 0: bad") and first["label"] == 0


def test_csv_rows_spanning_lines_keep_their_offsets(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerows([["text", "label"], ["first line\nsecond line", "positive"], ["plain", "negative"],
                     ['quote "inside", comma', "1"]])  # fmt: skip
    rows = read_user_file(path, label_names=LABELS)
    assert list(rows.texts) == ["first line second line", "plain", 'quote "inside", comma']
    assert rows.labels.tolist() == [1, 0, 1]


def test_absurd_line_is_refused_with_its_size(tmp_path: Path) -> None:
    path = tmp_path / "blob.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"text": "fine", "label": 1}) + "\n")
        fh.write('{"text": "' + "x" * (50 * 1024 * 1024) + '", "label": 0}\n')
    with pytest.raises(
        DataError,
        match=r"blob\.jsonl, line 2: one line holds 52,428,8\d\d bytes, over the limit of 8,388,608 bytes "
        r"for one sample.*--max-sample-bytes",
    ):
        read_user_file(path, label_names=LABELS)
    with pytest.raises(DataError, match=r"line 1: one line holds 29 bytes, over the limit of 10 bytes"):
        add_user_domain("tiny_cap", path, max_sample_bytes=10)


def test_csv_field_over_the_csv_limit_says_so(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("text,label\nshort,1\n" + "y" * 200_000 + ",0\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"long\.csv, line 3: a field is longer than the csv module's limit of 131,072 characters"
    ):
        read_user_file(path, label_names=LABELS)


def test_bad_utf8_deep_in_a_streamed_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "late.txt"
    path.write_bytes(b"fine\n" * 1000 + b"caf\xe9\n")
    with pytest.raises(DataError, match=r"late\.txt, line 1001: not UTF-8 text .*at byte 5003"):
        read_user_file(path, label_names=LABELS)
    with pytest.raises(DataError, match="max_sample_bytes=0 must be a positive number of bytes"):
        read_user_file(path, label_names=LABELS, max_sample_bytes=0)


def test_large_domain_is_stored_with_an_offset_index_and_read_lazily(tmp_path: Path) -> None:
    from kgkd.data import load_domain
    from kgkd.data.user import remove_user_domain

    path = tmp_path / "docs.jsonl"
    _big_jsonl(path, 400)
    entry = add_user_domain("lazy_docs", path, lazy=True)  # what files >= 64 MiB get by default
    stored = user_data_dir() / entry["file"]
    assert stored.suffix == ".jsonl" and (stored.parent / "lazy_docs.index.npz").is_file()
    train = load_domain("lazy_docs", "train")
    assert isinstance(train.texts, LazyTexts) and len(train) == entry["counts"]["train"]["total"]
    item = train[5]
    assert item["text"].startswith("review ") and item["label"] == int(item["text"].split()[1].rstrip(":")) % 2
    small = load_domain("lazy_docs", "train", limit=10)
    assert isinstance(small.texts, LazyTexts) and len(small) == 10
    assert small.fingerprint() != train.fingerprint()
    remove_user_domain("lazy_docs")
    assert not stored.exists() and not (stored.parent / "lazy_docs.index.npz").exists()
