"""Read a user's own data file into texts/images and label indices, checking every row.

``read_user_file`` understands five layouts, picked by the file suffix:

* ``.csv`` / ``.tsv`` — a header row, one sample per row; the text sits in ``text_column``
  and the (optional) label in ``label_column``;
* ``.jsonl`` / ``.ndjson`` — one JSON object per line with the same two keys;
* ``.txt`` — one text per line, no labels (blank lines are skipped);
* ``.npz`` — images: ``x`` [N,H,W] (uint8 0..255, or floats in 0..1) and optional ``y`` [N].

A label may be a label name (``positive``), its index (``1``) or empty/``null``/``-1`` for
an unlabelled sample, which kgkd stores as label ``-1``. Every problem raises a
``DataError`` that names the file, the line and the column, and says how to fix it; this is
why the readers are hand-written rather than a ``pandas.read_csv`` call.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import zipfile
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from kgkd.errors import DataError
from kgkd.utils.suggest import did_you_mean

#: File suffix → layout name.
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "txt",
    ".npz": "npz",
}
#: Longest line (one sample) accepted by default: 8 MiB; anything longer is a broken file.
MAX_SAMPLE_BYTES = 8 * 1024 * 1024
#: Label cells meaning "this sample has no label".
UNLABELLED_VALUES: frozenset[str] = frozenset({"", "-1", "null", "none", "nan", "?"})
_WS = re.compile(r"\s+")


@dataclass
class UserRows:
    """What a user file holds once read.

    Attributes:
        modality: ``"text"`` or ``"image"``.
        labels: int64 label index per sample; ``-1`` = unlabelled.
        texts: normalised texts (text files): a :class:`LazyTexts` reading each by byte offset.
        images: uint8 [N,H,W] (``.npz`` files).
        format: the layout read (``csv``, ``tsv``, ``jsonl``, ``txt``, ``npz``).
        skipped: blank lines skipped (plain-text files only).
    """

    modality: str
    labels: np.ndarray
    texts: Sequence[str] | None = None
    images: np.ndarray | None = None
    format: str = ""
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_labelled(self) -> int:
        return int((self.labels >= 0).sum())


def file_format(path: Path) -> str:
    """The layout of ``path`` from its suffix; unknown suffixes raise a DataError."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: unsupported file type '{path.suffix or '(no suffix)'}'; give a "
            f"{', '.join(sorted(FORMATS))} file (text: CSV/TSV/JSONL/one text per line; images: .npz with x and y)"
        )
    return fmt


def read_user_file(
    path: str | Path,
    *,
    label_names: Sequence[str],
    modality: str | None = None,
    text_column: str = "text",
    label_column: str | None = None,
    max_sample_bytes: int | None = None,
    show_progress: bool = False,
) -> UserRows:
    """Read and check a user data file, streaming: text files are indexed by byte offset, not loaded.

    Memory stays bounded for any file size: one line at a time is read and checked, and only each
    sample's byte offset and label index are kept; ``UserRows.texts`` reads a text when asked.

    Args:
        path: the file (its suffix selects the layout, see the module docstring).
        label_names: the label set; label cells must be one of these names or their index.
        modality: ``"text"`` or ``"image"``; ``None`` infers it (``.npz`` → image, else text).
        text_column: column/key holding the text (CSV/TSV/JSONL).
        label_column: column/key holding the label; ``None`` uses ``"label"`` when the file has
            it (JSONL: when its first object has it) and otherwise reads every sample as unlabelled.
        max_sample_bytes: longest line accepted (default :data:`MAX_SAMPLE_BYTES`); longer ones
            are refused with a message naming the line.
        show_progress: a progress bar over the bytes read.

    Raises:
        DataError: missing/empty file, unknown suffix, missing column (with a did-you-mean),
            empty text, label outside ``label_names``, malformed JSON/array — naming file, line, column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: no such file; give the path of your CSV/TSV/JSONL/TXT/NPZ data file"
        )
    fmt = file_format(path)
    inferred = "image" if fmt == "npz" else "text"
    if modality is not None and modality != inferred:
        fix = (
            "images must come as a .npz with arrays x [N,H,W] and optional y"
            if modality == "image"
            else "text must come as CSV/TSV/JSONL/TXT"
        )
        raise DataError(f"{path}: --modality {modality} does not fit a .{fmt} file; {fix}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; put at least one sample in it")
    if fmt == "npz":
        return _read_npz(path, label_names)
    if fmt == "txt" and label_column is not None:
        raise DataError(
            f"{path}: plain-text files hold one text per line and no labels, but --label-column "
            f"'{label_column}' was given; drop it, or use a CSV/TSV/JSONL file with a label column"
        )
    cap = MAX_SAMPLE_BYTES if max_sample_bytes is None else max_sample_bytes
    if cap < 1:
        raise DataError(f"max_sample_bytes={cap} must be a positive number of bytes")
    size = path.stat().st_size
    with tqdm(total=size, unit="B", unit_scale=True, desc=f"reading {path.name}", disable=not show_progress,
              leave=False) as bar:  # fmt: skip
        if fmt == "txt":
            return _read_txt(path, cap, bar)
        records = _csv_records(path, fmt, cap, bar) if fmt in ("csv", "tsv") else _jsonl_records(path, cap, bar)
        return _rows_from_records(path, fmt, records, label_names, text_column, label_column)


# --- streamed lines ----------------------------------------------------------------
class _Lines:
    """(line number, byte offset, decoded line) of a file, read in binary one capped line at a time.

    Memory stays bounded whatever the file size: no line longer than ``max_bytes`` is ever held
    (such a line raises a DataError naming it and its size); undecodable bytes raise a DataError
    naming the line. ``bar`` (a tqdm bar over bytes) is advanced as lines are read.
    """

    def __init__(self, path: Path, max_bytes: int, bar: Any = None, offset: int = 0, lineno: int = 1) -> None:
        self.path, self.max_bytes, self.bar = path, max_bytes, bar
        self.offset, self.lineno = offset, lineno

    def __iter__(self) -> Iterator[tuple[int, int, str]]:
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            while True:
                start = self.offset
                raw = fh.readline(self.max_bytes + 1)
                if not raw:
                    return
                if len(raw) > self.max_bytes and not raw.endswith(b"\n"):
                    raise self._too_long(fh, len(raw))
                self.offset += len(raw)
                if self.bar is not None:
                    self.bar.update(len(raw))
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(
                        f"{self.path}, line {self.lineno}: not UTF-8 text ({exc.reason} at byte {start + exc.start}); "
                        "save the file as UTF-8"
                    ) from None
                if start == 0:
                    text = text.removeprefix("\ufeff")
                yield self.lineno, start, text
                self.lineno += 1

    def _too_long(self, fh: Any, seen: int) -> DataError:
        size = seen
        while True:  # measure the whole line for the message, a chunk at a time
            chunk = fh.readline(1 << 20)
            size += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                break
        return DataError(
            f"{self.path}, line {self.lineno}: one line holds {size:,} bytes, over the limit of {self.max_bytes:,} "
            "bytes for one sample (max_sample_bytes); a line this long is almost always a broken file (missing "
            "line breaks, a binary blob) — put one sample per line, or raise the limit with --max-sample-bytes"
        )


def _normalised_text(path: Path, line: int, column: str, value: Any) -> str:
    """The normalised text of one cell, or a DataError naming the line and column."""
    if not isinstance(value, str):
        got = "no value" if value is None else f"{value!r} ({type(value).__name__})"
        raise DataError(
            f"{path}, line {line}, column '{column}': expected a string, got {got}; "
            "give every row its text (or remove the row)"
        )
    text = _normalise(value)
    if not text:
        raise DataError(f"{path}, line {line}, column '{column}': the text is empty; fill it in or remove the row")
    return text


class LazyTexts(Sequence[str]):
    """The texts of a user file, indexed by byte offset and read (and normalised) on demand.

    Holds one int64 offset per sample, never the texts; ``texts[i]`` seeks to sample ``i`` and
    parses just that line/row. Picklable (the file handle is reopened where it is used).
    """

    def __init__(self, path: Path, fmt: str, offsets: np.ndarray, column: str = "text",
                 header: Sequence[str] = ()) -> None:  # fmt: skip
        self.path, self.fmt, self.offsets = path, fmt, offsets
        self.column, self.header = column, list(header)
        self._fh: Any = None

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if self._fh is None:
            self._fh = open(self.path, "rb")  # noqa: SIM115 - kept open across reads; closed in __del__
        self._fh.seek(int(self.offsets[i]))
        if self.fmt in ("csv", "tsv"):
            lines = (raw.decode("utf-8") for raw in iter(self._fh.readline, b""))
            row = next(csv.reader(lines, delimiter="\t" if self.fmt == "tsv" else ","))
            return _normalise(dict(zip(self.header, row)).get(self.column, ""))
        line = self._fh.readline().decode("utf-8")
        if self.fmt == "jsonl":
            return _normalise(json.loads(line).get(self.column, ""))
        return _normalise(line)

    def take(self, positions: Sequence[int] | np.ndarray) -> LazyTexts:
        """The texts at ``positions`` (still lazy)."""
        return LazyTexts(self.path, self.fmt, self.offsets[np.asarray(positions, dtype=np.int64)],
                         self.column, self.header)  # fmt: skip

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fh": None}

    def __del__(self) -> None:
        if getattr(self, "_fh", None) is not None:
            self._fh.close()


SPLIT_CODES = ("train", "val", "test")


def lazy_index_path(path: Path) -> Path:
    """``text/<name>.jsonl`` → ``text/<name>.index.npz`` (byte offsets, labels, split codes)."""
    return path.with_name(path.name.removesuffix(".jsonl") + ".index.npz")


@dataclass
class LazyDomainFile:
    """A stored user text domain read lazily: uncompressed JSONL + an index of byte offsets.

    Large user domains are stored this way by ``kgkd data add`` so training reads each text
    when its batch needs it; only offsets, labels and split codes (17 bytes a sample) are loaded.
    """

    path: Path
    offsets: np.ndarray
    labels: np.ndarray
    splits: np.ndarray

    @classmethod
    def open(cls, path: Path) -> LazyDomainFile:
        index = lazy_index_path(path)
        try:
            with np.load(index, allow_pickle=False) as npz:
                offsets, labels, splits = npz["offsets"], npz["labels"], npz["splits"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{index}: the byte-offset index of {path.name} is missing or corrupt ({exc}); "
                            "re-add the domain with `kgkd data add NAME FILE --force`") from None  # fmt: skip
        if not len(offsets) == len(labels) == len(splits):
            raise DataError(f"{index}: offsets, labels and splits differ in length; re-add the domain with --force")
        return cls(path, offsets, labels, splits)

    def split(self, name: str) -> tuple[np.ndarray, LazyTexts]:
        """Labels and lazy texts of one split."""
        keep = np.flatnonzero(self.splits == SPLIT_CODES.index(name))
        return self.labels[keep].astype(np.int64), LazyTexts(self.path, "jsonl", self.offsets[keep])


def _read_txt(path: Path, max_bytes: int, bar: Any) -> UserRows:
    offsets: array[int] = array("q")
    skipped = 0
    for _, offset, line in _Lines(path, max_bytes, bar):
        if _normalise(line):
            offsets.append(offset)
        else:
            skipped += 1
    if not offsets:
        raise DataError(f"{path}: the file holds only blank lines; put one text per line in it")
    texts = LazyTexts(path, "txt", np.frombuffer(offsets, dtype=np.int64))
    return UserRows("text", np.full(len(texts), -1, dtype=np.int64), texts=texts, format="txt", skipped=skipped)


# --- CSV / TSV / JSONL ---------------------------------------------------------
@dataclass
class _Record:
    line: int
    values: dict[str, Any]
    offset: int = 0


def _csv_records(path: Path, fmt: str, max_bytes: int, bar: Any) -> tuple[list[str], Iterator[_Record]]:
    delimiter = "\t" if fmt == "tsv" else ","
    starts: list[int] = []  # offsets of the lines the csv reader took for the current row

    def lines() -> Iterator[str]:
        for _, offset, text in _Lines(path, max_bytes, bar):
            starts.append(offset)
            yield text

    reader = csv.reader(lines(), delimiter=delimiter)

    def fail(exc: csv.Error) -> DataError:
        if "field larger than field limit" in str(exc):
            limit = csv.field_size_limit()
            return DataError(
                f"{path}, line {reader.line_num}: a field is longer than the csv module's limit of {limit:,} "
                "characters; no sample needs that much text (teachers read a few hundred tokens) — shorten or drop "
                "that field; if it should be short, a quote (\") left open there swallows the lines after it"
            )
        return DataError(f"{path}, line {reader.line_num}: malformed {fmt.upper()} ({exc}); fix the quoting")

    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise fail(exc) from None
    if header is None or not any(h.strip() for h in header):
        raise DataError(f"{path}: the file has no header row; put column names (e.g. text,label) on line 1")
    header = [h.strip() for h in header]

    def records() -> Iterator[_Record]:
        while True:
            starts.clear()
            try:
                row = next(reader, None)
            except csv.Error as exc:
                raise fail(exc) from None
            if row is None:
                return
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) > len(header):
                raise DataError(
                    f"{path}, line {reader.line_num}: {len(row)} fields but the header has {len(header)} "
                    f"({delimiter!r}-separated); quote fields that contain {delimiter!r}"
                )
            yield _Record(reader.line_num, dict(zip(header, row)), starts[0])

    return header, records()


def _jsonl_records(path: Path, max_bytes: int, bar: Any) -> tuple[list[str], Iterator[_Record]]:
    def records() -> Iterator[_Record]:
        for lineno, offset, line in _Lines(path, max_bytes, bar):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise DataError(
                    f"{path}, line {lineno}: not valid JSON ({exc}); write one JSON object per line"
                ) from None
            if not isinstance(obj, dict):
                raise DataError(
                    f'{path}, line {lineno}: expected a JSON object like {{"text": ..., "label": ...}}, '
                    f"got {type(obj).__name__}"
                )
            yield _Record(lineno, obj, offset)

    it = records()
    first = next(it, None)
    if first is None:
        return [], iter(())
    return list(first.values), itertools.chain([first], it)


def _missing_column(
    path: Path, what: str, column: str, header: Sequence[str], option: str
) -> DataError:
    close = did_you_mean(column, header, cutoff=0.5)
    hint = f" Did you mean '{close}' ({option} {close})?" if close is not None else f" Pass {option} NAME."
    return DataError(
        f"{path}: no {what} column '{column}'.{hint} Columns in the file: {', '.join(map(repr, header)) or 'none'}"
    )


def _rows_from_records(
    path: Path,
    fmt: str,
    parsed: tuple[list[str], Iterator[_Record]],
    label_names: Sequence[str],
    text_column: str,
    label_column: str | None,
) -> UserRows:
    """Check every record while streaming; keep only each sample's byte offset and label index."""
    header, records = parsed
    first = next(records, None)
    if first is None:
        raise DataError(
            f"{path}: the file has no data rows; add one sample per {'row' if fmt != 'jsonl' else 'line'}"
        )
    if text_column not in header:
        raise _missing_column(path, "text", text_column, header, "--text-column")
    if label_column is not None and label_column not in header:
        raise _missing_column(path, "label", label_column, header, "--label-column")
    if label_column is None and "label" in header:
        label_column = "label"
    index = {name: i for i, name in enumerate(label_names)}
    offsets: array[int] = array("q")
    labels: array[int] = array("q")
    seen: dict[str, None] = {}  # distinct label cells so far (for the error message; at most 21 kept)
    stream = itertools.chain([first], records)
    for rec in stream:
        _normalised_text(path, rec.line, text_column, rec.values.get(text_column))
        value = rec.values.get(label_column) if label_column else None
        if value is not None and len(seen) <= 20 and str(value).strip().lower() not in UNLABELLED_VALUES:
            seen.setdefault(str(value).strip())
        label = _label_index(value, index, len(label_names))
        if label is None:
            raise _bad_label(path, rec.line, value, label_column, label_names, stream, seen)
        offsets.append(rec.offset)
        labels.append(label)
    texts = LazyTexts(path, fmt, np.frombuffer(offsets, dtype=np.int64), text_column, header)
    return UserRows("text", np.frombuffer(labels, dtype=np.int64).copy(), texts=texts, format=fmt)


def _label_index(value: Any, index: dict[str, int], count: int) -> int | None:
    """Label cell → index (-1 = unlabelled); ``None`` when the cell is not a label."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return -1
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    cell = str(value).strip()
    if cell.lower() in UNLABELLED_VALUES:
        return -1
    if cell in index:
        return index[cell]
    number = _as_int(value)
    return number if number is not None and 0 <= number < count else None


def _bad_label(path: Path, line: int, value: Any, column: str | None, label_names: Sequence[str],
               rest: Iterator[_Record], seen: dict[str, None]) -> DataError:  # fmt: skip
    """The error for a bad label cell; reads on (bounded) to list the label values the file holds."""
    for rec in rest:
        cell = rec.values.get(str(column))
        if cell is not None and str(cell).strip().lower() not in UNLABELLED_VALUES:
            seen.setdefault(str(cell).strip())
        if len(seen) > 20:
            break
    fix = (
        f"pass --labels listing every label, e.g. --labels {','.join(seen)}"
        if len(seen) <= 20
        else "the column holds more than 20 different values: pass --label-column NAME naming the label column"
    )
    bad = value if isinstance(value, bool) or not isinstance(value, (str, int, float)) else str(value).strip()
    return DataError(
        f"{path}, line {line}, column '{column}': label {bad!r} is not one of the labels "
        f"{list(label_names)} (or their indices 0..{len(label_names) - 1}; empty = unlabelled); {fix}"
    )


def _as_int(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    return int(value) if re.fullmatch(r"[+-]?\d+", str(value).strip()) else None


def _normalise(text: str) -> str:
    """Collapse whitespace runs and strip the ends (the shipped domains get the same treatment)."""
    return _WS.sub(" ", text).strip()


# --- images ----------------------------------------------------------------------
def _read_npz(path: Path, label_names: Sequence[str]) -> UserRows:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(
            f"{path}: not a readable .npz ({exc}); save it with numpy.savez(path, x=images, y=labels)"
        ) from None
    if "x" not in arrays:
        raise DataError(
            f"{path}: no array 'x' (arrays: {', '.join(sorted(arrays)) or 'none'}); "
            "save the images as numpy.savez(path, x=images[N,H,W], y=labels[N])"
        )
    x = arrays["x"]
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or len(x) == 0:
        raise DataError(
            f"{path}: array 'x' has shape {list(x.shape)}; give grey images as [N, H, W] with N >= 1"
        )
    images = _to_uint8(path, x)
    if "y" in arrays:
        y = arrays["y"]
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(
                f"{path}: array 'y' has shape {list(y.shape)} and dtype {y.dtype}; give one integer label per image "
                f"({len(x)} of them, -1 = unlabelled)"
            )
        bad = np.flatnonzero((y < -1) | (y >= len(label_names)))
        if bad.size:
            raise DataError(
                f"{path}: y[{bad[0]}] = {int(y[bad[0]])} is outside the labels 0..{len(label_names) - 1} "
                f"({list(label_names)}; -1 = unlabelled); pass --labels listing all {int(y.max()) + 1} labels"
            )
        labels = y.astype(np.int64)
    else:
        labels = np.full(len(x), -1, dtype=np.int64)
    return UserRows("image", labels, images=images, format="npz")


def _to_uint8(path: Path, x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype == np.bool_:
        return x.astype(np.uint8) * 255
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise DataError(
            f"{path}: array 'x' must hold finite numbers (got dtype {x.dtype}); give uint8 0..255 or floats 0..1"
        )
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 255:
        raise DataError(
            f"{path}: array 'x' ranges {low:g}..{high:g}; scale it to 0..255 (uint8) or 0..1 (floats)"
        )
    scale = 255.0 if high <= 1.0 and np.issubdtype(x.dtype, np.floating) else 1.0
    return np.clip(np.rint(x * scale), 0, 255).astype(np.uint8)
