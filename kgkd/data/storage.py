"""Reading and writing the built data files, byte-for-byte reproducibly.

Formats (see ``kgkd/ARCHITECTURE.md``):

* text  — ``data/text/<domain>.jsonl.gz``: one ``{"id","text","label","split"}`` object per line;
* image — ``data/<group>/<domain>.npz``: ``x_train,y_train,x_val,y_val,x_test,y_test``,
  x uint8 [N,H,W], y int64.

Writers pin every timestamp (gzip mtime, zip entry dates) so rebuilding from the same
sources gives the same bytes and the same sha256 in the manifest. Readers turn any
unreadable file into a ``MissingDataError`` that names the file and the rebuild command.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kgkd.data.splits import SPLITS
from kgkd.errors import MissingDataError
from kgkd.utils.io import atomic_path, atomic_write_bytes

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- text ------------------------------------------------------------------
def write_text_records(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write records as gzipped JSON lines (gzip mtime 0 → reproducible bytes)."""
    lines = "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(lines)
    return atomic_write_bytes(path, buf.getvalue())


def read_text_records(path: Path, rebuild: str) -> list[dict[str, Any]]:
    """Read a text domain file; any missing or malformed content → MissingDataError."""
    if not path.is_file():
        raise MissingDataError(f"data file {path} is missing; build it with `{rebuild}`")
    records: list[dict[str, Any]] = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                rec = json.loads(line)
                if (
                    not isinstance(rec, dict)
                    or not isinstance(rec.get("text"), str)
                    or not isinstance(rec.get("label"), int)
                    or rec.get("split") not in SPLITS
                ):
                    raise ValueError(f"line {lineno} lacks a text/label/split field")
                records.append(rec)
    except (OSError, EOFError, ValueError) as exc:
        raise MissingDataError(
            f"data file {path} is corrupt ({exc}); rebuild it with `{rebuild}`"
        ) from None
    return records


# --- images ----------------------------------------------------------------
def write_image_arrays(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write arrays as a compressed ``.npz`` with fixed zip dates (reproducible bytes)."""
    with (
        atomic_path(path) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
    ):
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    return Path(path)


def read_image_arrays(path: Path, rebuild: str) -> dict[str, np.ndarray]:
    """Read an image domain file; a missing file, key or bad array → MissingDataError."""
    if not path.is_file():
        raise MissingDataError(f"data file {path} is missing; build it with `{rebuild}`")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        for split in SPLITS:
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
            if x.dtype != np.uint8 or x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
                raise ValueError(f"x_{split}/y_{split} are not uint8 [N,H,W] / int [N]")
    except KeyError as exc:
        raise MissingDataError(
            f"data file {path} lacks array {exc}; rebuild it with `{rebuild}`"
        ) from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise MissingDataError(
            f"data file {path} is corrupt ({exc}); rebuild it with `{rebuild}`"
        ) from None
    return arrays


# --- manifest --------------------------------------------------------------
def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path`` (``{}`` when absent: e.g. a custom ``KGKD_DATA_DIR``)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MissingDataError(
            f"data manifest {path} is unreadable ({exc}); rebuild it with `kgkd data build`"
        ) from None
    return data if isinstance(data, dict) else {}
