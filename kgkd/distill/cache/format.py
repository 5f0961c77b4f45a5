"""Teacher-cache on-disk format: names, headers, fingerprints, checks and shard records.

Two layouts share one header (see :mod:`kgkd.distill.cache`):

* **single file** (format v1, ``*.safetensors``): every tensor in one safetensors file, the
  JSON header in its metadata under ``kgkd_cache``;
* **sharded folder** (format v2, the default for new caches): ``shard-00000.safetensors`` …
  of ``shard_size`` items each, a sidecar ``shard-00000.json`` per shard written right after
  the shard (its item range, settings, sha256), and ``index.json`` (the header plus the
  shard list) written last. A shard without a matching sidecar was never finished.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kgkd.errors import CacheError
from kgkd.paths import cache_dir
from kgkd.utils.io import atomic_write_json

FORMAT = "kgkd-teacher-cache"
VERSION = 1  # single-file layout
SHARDED_VERSION = 2  # folder of shards + index.json
DTYPES: dict[str, torch.dtype] = {"fp16": torch.float16, "fp32": torch.float32}
#: Reconstructed top-k logits fill the missing labels with (row minimum − this).
TOPK_GAP = 1e4
LOGITS, TOPK_V, TOPK_I, FEAT = "logits", "logits.topk_values", "logits.topk_indices", "feature."
INDEX_NAME = "index.json"
#: Items per shard of a new sharded cache (pooled 384-d fp16 features: ~3 MB per shard).
DEFAULT_SHARD_SIZE = 4096
LAYOUTS = ("sharded", "single")


def cache_fingerprint(
    teacher_fingerprint: str, dataset_fingerprint: str, preprocessing: str = ""
) -> str:
    """sha256 of teacher fingerprint + dataset fingerprint + preprocessing description."""
    payload = f"{teacher_fingerprint}|{dataset_fingerprint}|{preprocessing}"
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def default_cache_path(teacher_name: str, dataset_name: str) -> Path:
    """``<KGKD_CACHE_DIR>/teacher_outputs/<teacher>__<dataset>`` (a sharded cache folder)."""
    return cache_dir() / "teacher_outputs" / f"{teacher_name}__{dataset_name}"


def layout_of(path: str | os.PathLike[str]) -> str:
    """``single`` for a ``*.safetensors`` path, else ``sharded`` (a folder)."""
    return "single" if str(path).endswith(".safetensors") else "sharded"


def rebuild_hint(teacher: str) -> str:
    """How to recreate a teacher cache (the tail of every 'cache is broken' message)."""
    return (
        f"delete it and rebuild with TeacherCache.build(...) or `kgkd teachers cache --teacher {teacher} --domain DOMAIN` "
        "(or ask the exporting site for a new export)"
    )


def first_bad_rows(values: Tensor, index: Tensor, limit: int = 5) -> list[int]:
    """Dataset indices of the first rows of ``values`` holding NaN/inf."""
    bad = ~torch.isfinite(values.float().flatten(1)).all(dim=1)
    return index[bad][:limit].tolist()


def dataset_fingerprint(dataset: Any, override: str | None) -> str:
    """``override`` or ``dataset.fingerprint()``; datasets without one are refused."""
    if override is not None:
        return override
    fp = getattr(dataset, "fingerprint", None)
    if not callable(fp):
        raise CacheError(
            f"dataset {type(dataset).__name__} has no fingerprint() method, so a cache of it could be "
            "reused after the data changed; pass dataset_fingerprint='<stable id of the data>'"
        )
    return str(fp())


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (streamed in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shard_name(i: int) -> str:
    """File name of shard ``i``."""
    return f"shard-{i:05d}.safetensors"


def shard_ranges(num: int, shard_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), …]`` item ranges of the shards of ``num`` items."""
    if shard_size < 1:
        raise CacheError(
            f"teacher cache: shard_size={shard_size} must be a positive number of items"
        )
    return [(s, min(s + shard_size, num)) for s in range(0, num, shard_size)]


@dataclass
class ShardRecord:
    """One finished shard: its file, item range ``[start, stop)``, checksum and build settings."""

    file: str
    start: int
    stop: int
    sha256: str
    bytes: int
    fingerprint: str
    settings: dict[str, Any]
    num_labels: int
    feature_shapes: dict[str, list[int]]

    @property
    def sidecar(self) -> str:
        return sidecar_name(self.file)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def sidecar_name(shard_file: str) -> str:
    """``shard-00000.safetensors`` → ``shard-00000.json``."""
    return shard_file.removesuffix(".safetensors") + ".json"


def write_sidecar(folder: Path, record: ShardRecord) -> None:
    """Record a finished shard next to it (atomic)."""
    atomic_write_json(folder / record.sidecar, record.to_json())


def read_sidecar(folder: Path, shard_file: str) -> ShardRecord | None:
    """The sidecar of ``shard_file``, or ``None`` when absent/unreadable (= shard unfinished)."""
    try:
        return ShardRecord.from_json(
            json.loads((folder / sidecar_name(shard_file)).read_text("utf-8"))
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_outputs(items: dict[str, Tensor], index: Tensor, name: str, store: torch.dtype) -> None:
    """Refuse a batch of teacher outputs with wrong row counts, NaN/inf, or fp16 overflow."""
    where = f"teacher '{name}' cache (samples {int(index.min())}..{int(index.max())})"
    for key, value in items.items():
        if value.shape[0] != index.shape[0]:
            raise CacheError(
                f"{where}: '{key}' has {value.shape[0]} rows for a batch of {index.shape[0]} samples"
            )
        bad = first_bad_rows(value, index)
        if bad:
            raise CacheError(
                f"{where}: '{key}' holds NaN/inf for samples {bad}; fix the teacher or its inputs"
            )
        if not torch.isfinite(value.to(store)).all():
            bad = first_bad_rows(value.to(store), index)
            raise CacheError(
                f"{where}: '{key}' overflows {store} for samples {bad}; build the cache with dtype='fp32'"
            )


def check_tensors(
    tensors: dict[str, Tensor],
    rows: int,
    num_labels: int,
    top_k: int | None,
    feature_shapes: dict[str, tuple[int, ...]],
    where: str,
    hint: str,
    start: int = 0,
) -> None:
    """Header/tensor agreement of a cache or shard of ``rows`` items: keys, shapes, finite values, top-k range."""
    expected: dict[str, tuple[int, ...]] = {FEAT + f: (rows, *s) for f, s in feature_shapes.items()}
    if top_k is None:
        expected[LOGITS] = (rows, num_labels)
    else:
        expected[TOPK_V] = expected[TOPK_I] = (rows, top_k)
    for key, shape in expected.items():
        if key not in tensors:
            raise CacheError(f"{where}: tensor '{key}' is missing; {hint}")
        if tuple(tensors[key].shape) != shape:
            raise CacheError(
                f"{where}: tensor '{key}' has shape {list(tensors[key].shape)} but the header says {list(shape)}; {hint}"
            )
    for key, value in tensors.items():
        if key == TOPK_I:
            if ((value < 0) | (value >= num_labels)).any():
                raise CacheError(
                    f"{where}: top-k label indices outside 0..{num_labels - 1}; {hint}"
                )
            continue
        bad = first_bad_rows(value, torch.arange(start, start + rows))
        if bad:
            raise CacheError(f"{where}: '{key}' holds NaN/inf for samples {bad}; {hint}")
