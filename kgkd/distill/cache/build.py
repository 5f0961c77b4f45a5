"""Building teacher caches: run the teacher over item ranges, shard by shard, resumable and rank-split.

:func:`run_range` runs a teacher over dataset items ``[start, stop)`` — fetched once, sorted
by text length and batched so each batch pads only to its own longest item (the collate
pads per batch), under ``torch.inference_mode`` — and returns the outputs in dataset order.
:func:`build_shards` does that for every shard of a sharded cache that this rank owns
(shard ``i`` belongs to rank ``i % world_size``), keeping shards a previous (killed) run
finished and verified, with one file lock per shard so two processes building the same
cache split the work instead of duplicating or corrupting it. Rank 0 writes ``index.json``
after a barrier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from safetensors.torch import save_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from kgkd.distill.cache.format import (
    DTYPES,
    FEAT,
    FORMAT,
    INDEX_NAME,
    LOGITS,
    SHARDED_VERSION,
    TOPK_I,
    TOPK_V,
    ShardRecord,
    check_outputs,
    read_sidecar,
    sha256_file,
    shard_name,
    shard_ranges,
    write_sidecar,
)
from kgkd.distill.distributed import DistContext, barrier
from kgkd.errors import CacheError
from kgkd.utils.io import atomic_path, atomic_write_json
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

Collate = Callable[[list[Any]], Mapping[str, Any]]


@dataclass
class BuildSpec:
    """What one cache build stores and how it batches."""

    name: str
    fingerprint: str
    dataset_fingerprint: str
    features: tuple[str, ...]
    dtype: str
    top_k: int | None
    preprocessing: str
    batch_size: int
    sort_by_length: bool = True

    @property
    def store(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def settings(self, shard_size: int | None = None) -> dict[str, Any]:
        """Everything besides the fingerprint that makes two shards interchangeable."""
        out: dict[str, Any] = {
            "dtype": self.dtype,
            "top_k": self.top_k,
            "features": list(self.features),
        }
        if shard_size is not None:
            out["shard_size"] = shard_size
        return out

    def header(self, num: int, num_labels: int, feature_shapes: dict[str, list[int]],
               label_names: Sequence[str]) -> dict[str, Any]:  # fmt: skip
        """The cache header shared by both layouts (format version set by the caller)."""
        return {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "teacher": self.name,
            "label_names": list(label_names),
            "num_samples": num,
            "num_labels": num_labels,
            "feature_shapes": feature_shapes,
            "dtype": self.dtype,
            "top_k": self.top_k,
            "preprocessing": self.preprocessing,
            "dataset_fingerprint": self.dataset_fingerprint,  # lets an importer check the transfer set
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }


@dataclass
class BuildReport:
    """Which shards this process computed, kept from an earlier run, or found done by another process."""

    built: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    waited: list[str] = field(default_factory=list)


def current_context(ctx: DistContext | None) -> DistContext:
    """``ctx``, else the joined ``torch.distributed`` group's rank/size, else one process."""
    if ctx is not None:
        return ctx
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size())
    return DistContext()


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _length(item: Any) -> int:
    text = item.get("text") if isinstance(item, Mapping) else None
    return len(text) if isinstance(text, str) else 0


def run_range(
    teacher: nn.Module, dataset: Any, collate_fn: Collate, start: int, stop: int,
    spec: BuildSpec, device: torch.device, bar: Any = None,
) -> dict[str, Tensor]:  # fmt: skip
    """Teacher outputs for items ``[start, stop)`` in dataset order (checked, in storage dtype)."""
    items = [dataset[i] for i in range(start, stop)]
    order = list(range(len(items)))
    if spec.sort_by_length and items and _length(items[0]):
        order.sort(key=lambda j: -_length(items[j]))  # longest first: similar lengths share a batch
    tensors: dict[str, Tensor] = {}
    seen = torch.zeros(stop - start, dtype=torch.bool)
    for b in range(0, len(order), spec.batch_size):
        batch = collate_fn([items[j] for j in order[b : b + spec.batch_size]])
        if "index" not in batch:
            raise CacheError(
                f"teacher '{spec.name}' cache: batches have no 'index' key (keys: {sorted(batch)}); "
                "the collate_fn must pass each item's dataset index through"
            )
        index = torch.as_tensor(batch["index"]).long().cpu()
        pos = index - start
        if ((pos < 0) | (pos >= stop - start)).any() or seen[pos.clamp(0, stop - start - 1)].any() \
                or len(set(pos.tolist())) != len(pos):  # fmt: skip
            raise CacheError(
                f"teacher '{spec.name}' cache: batch indices {index.tolist()[:8]} are out of range "
                f"{start}..{stop - 1} or repeat earlier ones; dataset items must carry their own position as 'index'"
            )
        with torch.inference_mode():
            out = teacher(_to_device(batch, device))
        _store(tensors, out, index, pos, stop - start, spec)
        seen[pos] = True
        if bar is not None:
            bar.update(len(pos))
    if not seen.all():
        missing = ((~seen).nonzero().flatten()[:5] + start).tolist()
        raise CacheError(
            f"teacher '{spec.name}' cache: samples {missing} (of {start}..{stop - 1}) were never produced by the loader"
        )
    return tensors


def _store(
    tensors: dict[str, Tensor], out: Any, index: Tensor, pos: Tensor, rows: int, spec: BuildSpec
) -> None:
    """Check one batch of outputs and write it into the (preallocated) range tensors."""
    where = f"teacher '{spec.name}' cache (samples {int(index.min())}..{int(index.max())})"
    items = {LOGITS: out.logits.detach().cpu()}
    for f in spec.features:
        if f not in (out.features or {}):
            raise CacheError(
                f"{where}: the teacher returns no feature '{f}' (it has: {', '.join(sorted(out.features or {})) or 'none'})"
            )
        items[FEAT + f] = out.features[f].detach().cpu()
    check_outputs(items, index, spec.name, spec.store)
    logits = items.pop(LOGITS)
    if spec.top_k is not None:
        if not 0 < spec.top_k <= logits.shape[1]:
            raise CacheError(
                f"{where}: top_k={spec.top_k} must be in 1..{logits.shape[1]} (the teacher's label count)"
            )
        values, indices = logits.topk(spec.top_k, dim=1)
        items[TOPK_V], items[TOPK_I] = values, indices.to(torch.int32)
    else:
        items[LOGITS] = logits
    if not tensors:
        for key, value in items.items():
            dt = value.dtype if key == TOPK_I else spec.store
            tensors[key] = torch.zeros((rows, *value.shape[1:]), dtype=dt)
        tensors["__num_labels__"] = torch.tensor(logits.shape[1])
    for key, value in items.items():
        if tuple(value.shape[1:]) != tuple(tensors[key].shape[1:]):
            raise CacheError(
                f"{where}: '{key}' has per-sample shape {list(value.shape[1:])} but earlier batches had "
                f"{list(tensors[key].shape[1:])}; the teacher must return fixed-shape outputs (pool over tokens)"
            )
        tensors[key][pos] = value.to(tensors[key].dtype)


def split_meta(tensors: dict[str, Tensor], spec: BuildSpec) -> tuple[int, dict[str, list[int]]]:
    """Pop the label count off a range's tensors; return it and the feature shapes."""
    num_labels = int(tensors.pop("__num_labels__").item())
    return num_labels, {f: list(tensors[FEAT + f].shape[1:]) for f in spec.features}


def write_shard(folder: Path, i: int, start: int, stop: int, tensors: dict[str, Tensor], spec: BuildSpec,
                shard_size: int) -> ShardRecord:  # fmt: skip
    """Save shard ``i`` atomically, then its sidecar (checksum, range, settings)."""
    import json

    num_labels, shapes = split_meta(tensors, spec)
    path = folder / shard_name(i)
    meta = {
        "kgkd_shard": json.dumps({"fingerprint": spec.fingerprint, "start": start, "stop": stop})
    }
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
    record = ShardRecord(
        file=path.name, start=start, stop=stop, sha256=sha256_file(path), bytes=path.stat().st_size,
        fingerprint=spec.fingerprint, settings=spec.settings(shard_size), num_labels=num_labels,
        feature_shapes=shapes,
    )  # fmt: skip
    write_sidecar(folder, record)
    return record


def finished_shard(
    folder: Path, i: int, start: int, stop: int, spec: BuildSpec, shard_size: int
) -> ShardRecord | None:
    """The record of shard ``i`` if an earlier run finished it for this exact build and its bytes verify."""
    name = shard_name(i)
    rec = read_sidecar(folder, name)
    path = folder / name
    if rec is None or not path.is_file():
        return None
    if (rec.fingerprint, rec.start, rec.stop, rec.settings) != (
        spec.fingerprint,
        start,
        stop,
        spec.settings(shard_size),
    ):
        return None
    if path.stat().st_size != rec.bytes or sha256_file(path) != rec.sha256:
        log.warning("shard %s of teacher '%s' cache in %s is corrupt (checksum mismatch): rebuilding it",
                    name, spec.name, folder)  # fmt: skip
        return None
    return rec


def build_shards(
    teacher: nn.Module, dataset: Any, collate_fn: Collate, folder: Path, spec: BuildSpec,
    shard_size: int, device: torch.device, ctx: DistContext, label_names: Sequence[str],
    show_progress: bool = True, lock_timeout: float = -1,
) -> BuildReport:  # fmt: skip
    """Build this rank's missing shards of the cache in ``folder``; rank 0 writes the index."""
    num = len(dataset)
    ranges = shard_ranges(num, shard_size)
    mine = [i for i in range(len(ranges)) if i % ctx.world_size == ctx.rank]
    folder.mkdir(parents=True, exist_ok=True)
    report = BuildReport()
    total = sum(ranges[i][1] - ranges[i][0] for i in mine)
    with tqdm(total=total, desc=f"caching {spec.name}", disable=not (show_progress and ctx.is_main),
              leave=False, unit="item") as bar:  # fmt: skip

        def ensure(i: int, waited: bool) -> None:
            start, stop = ranges[i]
            if finished_shard(folder, i, start, stop, spec, shard_size) is not None:
                (report.waited if waited else report.kept).append(shard_name(i))
            else:
                tensors = run_range(teacher, dataset, collate_fn, start, stop, spec, device, bar)
                write_shard(folder, i, start, stop, tensors, spec, shard_size)
                report.built.append(shard_name(i))
                return
            bar.update(stop - start)

        busy = []
        for i in mine:  # first pass: skip shards another process is building right now
            lock = FileLock(str(folder / f"{shard_name(i)}.lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                busy.append(i)
                continue
            try:
                ensure(i, waited=False)
            finally:
                lock.release()
        for i in busy:  # second pass: wait for them; usually they are done by then
            log.info(
                "waiting for another process building %s of teacher '%s'", shard_name(i), spec.name
            )
            with FileLock(str(folder / f"{shard_name(i)}.lock"), timeout=lock_timeout):
                ensure(i, waited=True)
    barrier(ctx)
    if ctx.is_main:
        write_index(folder, spec, ranges, shard_size, label_names)
    barrier(ctx)
    return report


def write_index(folder: Path, spec: BuildSpec, ranges: list[tuple[int, int]], shard_size: int,
                label_names: Sequence[str]) -> dict[str, Any]:  # fmt: skip
    """Collect every shard's sidecar into ``index.json`` (under the index lock); drop shards past the end."""
    records = []
    for i, (start, stop) in enumerate(ranges):
        rec = read_sidecar(folder, shard_name(i))
        if rec is None or (rec.fingerprint, rec.start, rec.stop) != (spec.fingerprint, start, stop):
            raise CacheError(
                f"teacher '{spec.name}' cache in {folder}: {shard_name(i)} (samples {start}..{stop - 1}) was not "
                "finished by any rank; rerun the same build command to complete the cache"
            )
        records.append(rec)
    labels = {r.num_labels for r in records}
    shapes = {str(r.feature_shapes) for r in records}
    if len(labels) != 1 or len(shapes) != 1:
        raise CacheError(
            f"teacher '{spec.name}' cache in {folder}: shards disagree on label count {sorted(labels)} or feature "
            "shapes; the teacher changed between ranks/runs — delete the folder and rebuild"
        )
    header = spec.header(
        ranges[-1][1], records[0].num_labels, records[0].feature_shapes, label_names
    )
    header.update(version=SHARDED_VERSION, layout="sharded", shard_size=shard_size,
                  shards=[{k: getattr(r, k) for k in ("file", "start", "stop", "sha256", "bytes")} for r in records])  # fmt: skip
    with FileLock(str(folder / f"{INDEX_NAME}.lock")):
        atomic_write_json(folder / INDEX_NAME, header)
        for extra in sorted(
            folder.glob("shard-*.safetensors")
        ):  # leftovers of a larger earlier build
            if extra.name not in {r.file for r in records}:
                extra.unlink(missing_ok=True)
                (folder / (extra.stem + ".json")).unlink(missing_ok=True)
    return header


def lock_for(path: Path) -> FileLock:
    """The file lock guarding a single-file cache (``<path>.lock`` next to it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock")
