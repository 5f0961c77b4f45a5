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
import difflib
import io
import json
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgkd.errors import DataError

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
#: Label cells meaning "this sample has no label".
UNLABELLED_VALUES: frozenset[str] = frozenset({"", "-1", "null", "none", "nan", "?"})
_WS = re.compile(r"\s+")


@dataclass
class UserRows:
    """What a user file holds once read.

    Attributes:
        modality: ``"text"`` or ``"image"``.
        labels: int64 label index per sample; ``-1`` = unlabelled.
        texts: normalised texts (text files).
        images: uint8 [N,H,W] (``.npz`` files).
        format: the layout read (``csv``, ``tsv``, ``jsonl``, ``txt``, ``npz``).
        skipped: blank lines skipped (plain-text files only).
    """

    modality: str
    labels: np.ndarray
    texts: list[str] | None = None
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
) -> UserRows:
    """Read and check a user data file.

    Args:
        path: the file (its suffix selects the layout, see the module docstring).
        label_names: the label set; label cells must be one of these names or their index.
        modality: ``"text"`` or ``"image"``; ``None`` infers it (``.npz`` → image, else text).
        text_column: column/key holding the text (CSV/TSV/JSONL).
        label_column: column/key holding the label; ``None`` uses ``"label"`` when the file has
            it and otherwise reads every sample as unlabelled.

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
    if fmt == "txt":
        if label_column is not None:
            raise DataError(
                f"{path}: plain-text files hold one text per line and no labels, but --label-column "
                f"'{label_column}' was given; drop it, or use a CSV/TSV/JSONL file with a label column"
            )
        return _read_txt(path)
    records = _csv_records(path, fmt) if fmt in ("csv", "tsv") else _jsonl_records(path)
    return _rows_from_records(path, fmt, records, label_names, text_column, label_column)


# --- plain text --------------------------------------------------------------
def _open_text(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) pairs; undecodable bytes raise a DataError naming the line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8"
        ) from None
    yield from enumerate(io.StringIO(text, newline=""), start=1)


def _read_txt(path: Path) -> UserRows:
    texts: list[str] = []
    skipped = 0
    for _, line in _open_text(path):
        text = _normalise(line)
        if text:
            texts.append(text)
        else:
            skipped += 1
    if not texts:
        raise DataError(f"{path}: the file holds only blank lines; put one text per line in it")
    return UserRows(
        "text", np.full(len(texts), -1, dtype=np.int64), texts=texts, format="txt", skipped=skipped
    )


# --- CSV / TSV / JSONL ---------------------------------------------------------
@dataclass
class _Record:
    line: int
    values: dict[str, Any]


def _csv_records(path: Path, fmt: str) -> tuple[list[str], list[_Record]]:
    delimiter = "\t" if fmt == "tsv" else ","
    lines = (line for _, line in _open_text(path))
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise DataError(
                f"{path}: the file has no header row; put column names (e.g. text,label) on line 1"
            )
        header = [h.strip() for h in header]
        records: list[_Record] = []
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) > len(header):
                raise DataError(
                    f"{path}, line {reader.line_num}: {len(row)} fields but the header has {len(header)} "
                    f"({delimiter!r}-separated); quote fields that contain {delimiter!r}"
                )
            records.append(_Record(reader.line_num, dict(zip(header, row))))
    except csv.Error as exc:
        raise DataError(
            f"{path}, line {reader.line_num}: malformed {fmt.upper()} ({exc}); fix the quoting"
        ) from None
    return header, records


def _jsonl_records(path: Path) -> tuple[list[str], list[_Record]]:
    keys: dict[str, None] = {}
    records: list[_Record] = []
    for lineno, line in _open_text(path):
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
        keys.update(dict.fromkeys(obj))
        records.append(_Record(lineno, obj))
    return list(keys), records


def _missing_column(
    path: Path, what: str, column: str, header: Sequence[str], option: str
) -> DataError:
    close = difflib.get_close_matches(column, list(header), n=1, cutoff=0.5)
    hint = (
        f" Did you mean '{close[0]}' ({option} {close[0]})?" if close else f" Pass {option} NAME."
    )
    return DataError(
        f"{path}: no {what} column '{column}'.{hint} Columns in the file: {', '.join(map(repr, header)) or 'none'}"
    )


def _rows_from_records(
    path: Path,
    fmt: str,
    parsed: tuple[list[str], list[_Record]],
    label_names: Sequence[str],
    text_column: str,
    label_column: str | None,
) -> UserRows:
    header, records = parsed
    if not records:
        raise DataError(
            f"{path}: the file has no data rows; add one sample per {'row' if fmt != 'jsonl' else 'line'}"
        )
    if text_column not in header:
        raise _missing_column(path, "text", text_column, header, "--text-column")
    if label_column is not None and label_column not in header:
        raise _missing_column(path, "label", label_column, header, "--label-column")
    if label_column is None and "label" in header:
        label_column = "label"
    texts: list[str] = []
    raw_labels: list[tuple[int, Any]] = []
    for rec in records:
        value = rec.values.get(text_column)
        if not isinstance(value, str):
            got = "no value" if value is None else f"{value!r} ({type(value).__name__})"
            raise DataError(
                f"{path}, line {rec.line}, column '{text_column}': expected a string, got {got}; "
                "give every row its text (or remove the row)"
            )
        text = _normalise(value)
        if not text:
            raise DataError(
                f"{path}, line {rec.line}, column '{text_column}': the text is empty; fill it in or remove the row"
            )
        texts.append(text)
        raw_labels.append((rec.line, rec.values.get(label_column) if label_column else None))
    labels = _label_indices(path, raw_labels, label_names, label_column)
    return UserRows("text", labels, texts=texts, format=fmt)


def _label_indices(
    path: Path, raw: Sequence[tuple[int, Any]], label_names: Sequence[str], column: str | None
) -> np.ndarray:
    """Label cells → indices into ``label_names`` (-1 = unlabelled); the first bad cell raises."""
    index = {name: i for i, name in enumerate(label_names)}
    out = np.full(len(raw), -1, dtype=np.int64)
    for pos, (line, value) in enumerate(raw):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            bad = value
        else:
            cell = str(value).strip()
            if cell.lower() in UNLABELLED_VALUES:
                continue
            if cell in index:
                out[pos] = index[cell]
                continue
            number = _as_int(value)
            if number is not None and 0 <= number < len(label_names):
                out[pos] = number
                continue
            bad = cell
        seen = list(dict.fromkeys(str(v).strip() for _, v in raw if v is not None and str(v).strip().lower()
                                  not in UNLABELLED_VALUES))  # fmt: skip
        fix = (
            f"pass --labels listing every label, e.g. --labels {','.join(seen)}"
            if len(seen) <= 20
            else f"the column holds {len(seen)} different values: pass --label-column NAME naming the label column"
        )
        raise DataError(
            f"{path}, line {line}, column '{column}': label {bad!r} is not one of the labels "
            f"{list(label_names)} (or their indices 0..{len(label_names) - 1}; empty = unlabelled); {fix}"
        )
    return out


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
