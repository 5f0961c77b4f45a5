"""``TeacherCache``: build, open, verify, export and read one teacher's cached outputs.

A cache lives either in one ``*.safetensors`` file (format v1, read whole into memory) or in
a sharded folder (format v2, the default; see :mod:`kgkd.distill.cache.format`), read
lazily: opening a folder reads only ``index.json`` and stats the shard files, and
:meth:`TeacherCache.lookup` reads only the rows a batch asks for, so memory does not grow
with the transfer set.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from kgkd.distill.cache.build import (
    BuildReport,
    BuildSpec,
    build_shards,
    current_context,
    lock_for,
    run_range,
    split_meta,
    write_index,
    write_shard,
)
from kgkd.distill.cache.format import (
    DEFAULT_SHARD_SIZE,
    DTYPES,
    FEAT,
    FORMAT,
    INDEX_NAME,
    LAYOUTS,
    LOGITS,
    SHARDED_VERSION,
    TOPK_GAP,
    TOPK_I,
    TOPK_V,
    VERSION,
    cache_fingerprint,
    check_tensors,
    dataset_fingerprint,
    default_cache_path,
    layout_of,
    rebuild_hint,
    sha256_file,
    shard_name,
    shard_ranges,
    sidecar_name,
)
from kgkd.distill.cache.reader import ShardPool, ShardReader
from kgkd.distill.distributed import DistContext
from kgkd.errors import CacheError
from kgkd.utils.io import atomic_path
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

Collate = Callable[[list[Any]], Mapping[str, Any]]


class TeacherCache:
    """Cached outputs of one teacher on one dataset.

    Build with :meth:`build` / :meth:`get_or_build`, open with :meth:`load` or :meth:`import_`,
    read with :meth:`lookup`. Single-file caches hold their tensors in memory; sharded caches
    read rows from their shards on demand (``tensors`` materialises everything: small caches only).
    """

    def __init__(
        self,
        header: dict[str, Any],
        tensors: dict[str, Tensor] | None = None,
        path: Path | None = None,
    ) -> None:
        self.header = header
        self._tensors = tensors
        self.path = path
        self.report: BuildReport | None = None  # set by build(): shards built / kept / waited for
        self._pool = ShardPool()
        self._opened: set[int] = set()

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for spawned DataLoader workers: open shard files are not carried over."""
        return {**self.__dict__, "_pool": None, "_opened": set()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pool = ShardPool()

    # -- header -------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        return str(self.header["fingerprint"])

    @property
    def teacher_name(self) -> str:
        return str(self.header["teacher"])

    @property
    def num_samples(self) -> int:
        return int(self.header["num_samples"])

    @property
    def num_labels(self) -> int:
        return int(self.header["num_labels"])

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.header.get("label_names") or ())

    @property
    def feature_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v) for k, v in self.header["feature_shapes"].items()}

    @property
    def top_k(self) -> int | None:
        return self.header.get("top_k")

    @property
    def is_sharded(self) -> bool:
        return self.header.get("layout") == "sharded" and self._tensors is None

    @property
    def shards(self) -> list[dict[str, Any]]:
        """The shard list of a sharded cache (``[]`` for a single-file one)."""
        return list(self.header.get("shards") or [])

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        where = f", shards={len(self.shards)}" if self.shards else ""
        return (
            f"TeacherCache(teacher={self.teacher_name!r}, samples={self.num_samples}, labels={self.num_labels}, "
            f"features={list(self.feature_shapes)}, dtype={self.header['dtype']}, top_k={self.top_k}{where})"
        )

    def _where(self) -> str:
        return f"teacher '{self.teacher_name}' cache (samples 0..{self.num_samples - 1})"

    @property
    def tensors(self) -> dict[str, Tensor]:
        """All tensors in memory (a sharded cache is read whole on first access: small caches only)."""
        if self._tensors is None:
            keys = self._keys()
            self._tensors = {k: self._gather(k, torch.arange(self.num_samples)) for k in keys}
        return self._tensors

    def _keys(self) -> list[str]:
        keys = [FEAT + f for f in self.feature_shapes]
        return keys + ([LOGITS] if self.top_k is None else [TOPK_V, TOPK_I])

    # -- building -----------------------------------------------------------
    @classmethod
    def build(
        cls,
        teacher: nn.Module,
        dataset: Any,
        collate_fn: Collate,
        batch_size: int = 64,
        features: Sequence[str] = (),
        path: str | os.PathLike[str] | None = None,
        dtype: str = "fp16",
        top_k: int | None = None,
        preprocessing: str = "",
        dataset_fingerprint: str | None = None,
        device: torch.device | str | None = None,
        show_progress: bool = True,
        shard_size: int = DEFAULT_SHARD_SIZE,
        sort_by_length: bool = True,
        dist_ctx: DistContext | None = None,
    ) -> TeacherCache:
        """Run ``teacher`` over ``dataset`` once (inference mode, batched) and save the cache.

        Args:
            teacher: a ``Teacher`` (``name``, ``fingerprint()``, ``forward(batch) -> ModelOutput``).
            dataset: items carry ``index`` (position in the dataset); needs ``fingerprint()``
                unless ``dataset_fingerprint`` is given.
            collate_fn: builds the teacher's batch dicts (must keep ``index``; should pad per batch).
            features: names of ``ModelOutput.features`` to store.
            path: a folder → sharded cache (default, :func:`default_cache_path`); a
                ``*.safetensors`` file → single-file cache (v1). Written atomically, per shard.
            dtype: ``"fp16"`` (default, half the size) or ``"fp32"``.
            top_k: store only the k largest logits per sample (values + indices).
            preprocessing: description of any input preprocessing (part of the fingerprint).
            device: where the teacher runs (default: where its parameters are); it is moved
                there for the build and back to its own device afterwards.
            shard_size: items per shard of a sharded cache.
            sort_by_length: batch text items of similar length together (dynamic padding).
            dist_ctx: rank/world size; default: the joined ``torch.distributed`` group, if any.
                Each rank builds shards ``rank, rank + world, …``; rank 0 writes the index.
        """
        spec, target = cls._spec(teacher, dataset, batch_size, features, path, dtype, top_k, preprocessing,
                                 dataset_fingerprint, sort_by_length)  # fmt: skip
        if layout_of(target) == "single":
            with lock_for(target):
                return cls._build_single(teacher, dataset, collate_fn, spec, target, device)
        return cls._build_sharded(teacher, dataset, collate_fn, spec, target, device, shard_size,
                                  dist_ctx, show_progress)  # fmt: skip

    @classmethod
    def _spec(
        cls, teacher: nn.Module, dataset: Any, batch_size: int, features: Sequence[str],
        path: str | os.PathLike[str] | None, dtype: str, top_k: int | None, preprocessing: str,
        data_fp: str | None, sort_by_length: bool,
    ) -> tuple[BuildSpec, Path]:  # fmt: skip
        name = str(getattr(teacher, "name", type(teacher).__name__))
        if dtype not in DTYPES:
            raise CacheError(
                f"teacher '{name}' cache: dtype must be one of {sorted(DTYPES)}, got '{dtype}'"
            )
        if batch_size < 1:
            raise CacheError(f"teacher '{name}' cache: batch_size={batch_size} must be >= 1")
        if len(dataset) == 0:
            raise CacheError(f"teacher '{name}' cache: the dataset is empty, nothing to cache")
        data_fp = dataset_fingerprint(dataset, data_fp)
        fingerprint = cache_fingerprint(teacher.fingerprint(), data_fp, preprocessing)  # type: ignore[operator]
        if path is None:
            path = default_cache_path(name, str(getattr(dataset, "name", type(dataset).__name__)))
        spec = BuildSpec(name, fingerprint, data_fp, tuple(features), dtype, top_k, preprocessing,
                         batch_size, sort_by_length)  # fmt: skip
        return spec, Path(path)

    @staticmethod
    def _devices(
        teacher: nn.Module, device: torch.device | str | None
    ) -> tuple[torch.device, torch.device]:
        param = next(teacher.parameters(), None)
        home = param.device if param is not None else torch.device("cpu")
        return home, (home if device is None else torch.device(device))

    @classmethod
    def _build_single(cls, teacher: nn.Module, dataset: Any, collate_fn: Collate, spec: BuildSpec,
                      target: Path, device: torch.device | str | None) -> TeacherCache:  # fmt: skip
        home, run_on = cls._devices(teacher, device)
        was_training = teacher.training
        teacher.eval().to(run_on)
        try:
            tensors = run_range(teacher, dataset, collate_fn, 0, len(dataset), spec, run_on)
        finally:
            teacher.train(was_training)
            teacher.to(home)
        num_labels, shapes = split_meta(tensors, spec)
        header = spec.header(
            len(dataset), num_labels, shapes, getattr(teacher, "label_names", ()) or ()
        )
        header["version"] = VERSION
        cache = cls(header, tensors, target)
        cache.save(target)
        log.info("cached %s: %d samples -> %s", spec.name, len(dataset), target)
        return cache

    @classmethod
    def _build_sharded(cls, teacher: nn.Module, dataset: Any, collate_fn: Collate, spec: BuildSpec,
                       folder: Path, device: torch.device | str | None, shard_size: int,
                       dist_ctx: DistContext | None, show_progress: bool) -> TeacherCache:  # fmt: skip
        if folder.is_file():
            raise CacheError(
                f"teacher '{spec.name}' cache: {folder} is a file, but a sharded cache is a folder; "
                "give a folder path, or a path ending in .safetensors for a single-file cache"
            )
        ctx = current_context(dist_ctx)
        home, run_on = cls._devices(teacher, device)
        if dist_ctx is not None and ctx.device.type != "cpu" and device is None:
            run_on = ctx.device
        was_training = teacher.training
        teacher.eval().to(run_on)
        try:
            report = build_shards(teacher, dataset, collate_fn, folder, spec, shard_size, run_on, ctx,
                                  getattr(teacher, "label_names", ()) or (), show_progress)  # fmt: skip
        finally:
            teacher.train(was_training)
            teacher.to(home)
        cache = cls.load(folder)
        cache.report = report
        log.info("cached %s: %d samples in %d shards -> %s (built %d, kept %d)", spec.name, len(dataset),
                 len(cache.shards), folder, len(report.built), len(report.kept) + len(report.waited))  # fmt: skip
        return cache

    @classmethod
    def get_or_build(
        cls,
        teacher: nn.Module,
        dataset: Any,
        collate_fn: Collate,
        path: str | os.PathLike[str] | None = None,
        preprocessing: str = "",
        dataset_fingerprint: str | None = None,
        **build_kwargs: Any,
    ) -> TeacherCache:
        """Reuse the cache at ``path`` when its fingerprint and settings are current, else (re)build it.

        A stale, unreadable or corrupt cache is logged and rebuilt; a sharded cache keeps every
        shard that still verifies (checksums are checked here) and rebuilds only the others.
        ``build_kwargs`` go to :meth:`build`.
        """
        spec, target = cls._spec(
            teacher, dataset, build_kwargs.get("batch_size", 64), build_kwargs.get("features", ()), path,
            build_kwargs.get("dtype", "fp16"), build_kwargs.get("top_k"), preprocessing, dataset_fingerprint,
            build_kwargs.get("sort_by_length", True),
        )  # fmt: skip
        build_kwargs = {**build_kwargs, "path": target, "preprocessing": preprocessing,
                        "dataset_fingerprint": dataset_fingerprint}  # fmt: skip
        if layout_of(target) == "single":
            with lock_for(target):  # another process may be writing this very file
                reused = cls._reusable(target, spec, verify=False)
                if reused is not None:
                    return reused
                build_kwargs.pop("path")
                return cls._build_single(
                    teacher, dataset, collate_fn, spec, target, build_kwargs.get("device")
                )
        reused = cls._reusable(target, spec, verify=True)
        return (
            reused
            if reused is not None
            else cls.build(teacher, dataset, collate_fn, **build_kwargs)
        )

    @classmethod
    def _reusable(cls, target: Path, spec: BuildSpec, verify: bool) -> TeacherCache | None:
        if not target.exists():
            return None
        if (
            target.is_dir() and not (target / INDEX_NAME).exists()
        ):  # never finished: build() resumes it
            if any(target.glob("shard-*.json")):
                log.info(
                    "finishing the interrupted teacher cache %s (finished shards are kept)", target
                )
            return None
        try:
            cache = cls.load(target, expected_fingerprint=spec.fingerprint, verify=verify)
        except CacheError as exc:
            log.warning("rebuilding teacher cache of '%s': %s", spec.name, exc)
            return None
        have = {
            "dtype": cache.header["dtype"],
            "top_k": cache.top_k,
            "features": sorted(cache.feature_shapes),
        }
        want = {"dtype": spec.dtype, "top_k": spec.top_k, "features": sorted(spec.features)}
        if have != want:
            log.warning(
                "rebuilding teacher cache of '%s': %s holds %s, asked for %s",
                spec.name,
                target,
                have,
                want,
            )
            return None
        log.info("reusing teacher cache %s (%d samples)", target, cache.num_samples)
        return cache

    # -- persistence --------------------------------------------------------
    def save(self, path: str | os.PathLike[str], shard_size: int | None = None) -> Path:
        """Write the cache to ``path``: one safetensors file (``*.safetensors``) or a sharded folder."""
        target = Path(path)
        if layout_of(target) == "single":
            header = {
                k: v for k, v in self.header.items() if k not in ("layout", "shard_size", "shards")
            }
            if self.header.get("layout") == "sharded":
                header["version"] = VERSION
            with atomic_path(target) as tmp:
                save_file({k: v.contiguous() for k, v in self.tensors.items()}, str(tmp),
                          metadata={"kgkd_cache": json.dumps(header)})  # fmt: skip
            self.path = target
            return target
        self._save_sharded(
            target, shard_size or int(self.header.get("shard_size") or DEFAULT_SHARD_SIZE)
        )
        return target

    def _save_sharded(self, folder: Path, shard_size: int) -> None:
        """Write shard by shard (a sharded source of the same shard size is copied file by file, verified)."""
        folder.mkdir(parents=True, exist_ok=True)
        spec = BuildSpec(self.teacher_name, self.fingerprint, str(self.header.get("dataset_fingerprint")),
                         tuple(self.feature_shapes), self.header["dtype"], self.top_k,
                         str(self.header.get("preprocessing", "")), 1)  # fmt: skip
        ranges = shard_ranges(self.num_samples, shard_size)
        same = self.is_sharded and self.header.get("shard_size") == shard_size
        for i, (start, stop) in enumerate(ranges):
            if same and self.path is not None and self.path.resolve() != folder.resolve():
                src = self.path / shard_name(i)
                with atomic_path(folder / shard_name(i)) as tmp:
                    shutil.copyfile(src, tmp)
                if sha256_file(folder / shard_name(i)) != self.shards[i]["sha256"]:
                    raise CacheError(
                        f"{src} does not match its checksum in {self.path / INDEX_NAME}; {rebuild_hint(self.teacher_name)}"
                    )
                shutil.copyfile(
                    self.path / sidecar_name(shard_name(i)), folder / sidecar_name(shard_name(i))
                )
                continue
            rows = torch.arange(start, stop)
            tensors = {k: self._gather(k, rows) for k in self._keys()}
            tensors["__num_labels__"] = torch.tensor(self.num_labels)
            write_shard(folder, i, start, stop, tensors, spec, shard_size)
        header = write_index(folder, spec, ranges, shard_size, self.label_names)
        self.header, self.path, self._tensors, self._opened = header, folder, None, set()
        self._pool.close()

    def export(self, path: str | os.PathLike[str], shard_size: int | None = None) -> Path:
        """Write a copy for another site: a folder (shard by shard, checksums verified) or one ``*.safetensors`` file."""
        copy = TeacherCache(self.header, self._tensors, self.path)
        return copy.save(path, shard_size=shard_size)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        expected_fingerprint: str | None = None,
        verify: bool = False,
    ) -> TeacherCache:
        """Open a cache file or folder; ``expected_fingerprint`` guards against stale caches.

        A folder is opened lazily (index + file sizes); ``verify=True`` also checks every shard's
        sha256 (naming the first bad shard). A single file is read and scanned whole.
        """
        path = Path(path)
        if path.is_dir():
            cache = cls._load_folder(path)
            if verify:
                cache.verify()
        elif path.is_file():
            cache = cls._load_file(path)
        else:
            raise CacheError(
                f"teacher cache {'file' if layout_of(path) == 'single' else 'folder'} {path} does not exist; "
                "build it with TeacherCache.build(...) or "
                "`kgkd teachers cache --teacher NAME --domain DOMAIN`"
            )
        if expected_fingerprint is not None and cache.fingerprint != expected_fingerprint:
            raise CacheError(
                f"{cache._where()} in {path} is stale: fingerprint {cache.fingerprint[:12]}… does not match the "
                f"expected {expected_fingerprint[:12]}… (teacher weights, data or preprocessing changed); "
                f"{rebuild_hint(cache.teacher_name)}"
            )
        return cache

    @classmethod
    def _load_file(cls, path: Path) -> TeacherCache:
        teacher = path.stem.split("__")[0]
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CacheError(
                f"teacher cache file {path} is truncated or corrupt ({exc}); {rebuild_hint(teacher)}"
            ) from None
        try:
            header = json.loads(meta["kgkd_cache"])
        except (KeyError, json.JSONDecodeError):
            raise CacheError(
                f"{path} is a safetensors file without a kgkd cache header; {rebuild_hint(teacher)}"
            ) from None
        cache = cls(header, tensors, path)
        cache.validate()
        return cache

    @classmethod
    def _load_folder(cls, folder: Path) -> TeacherCache:
        index = folder / INDEX_NAME
        # the teacher's name is in index.json; without it, never guess one from the folder name
        teacher = "TEACHER"
        if not index.is_file():
            if any(folder.glob("shard-*.json")):
                what = "holds shards but no index.json: its build was interrupted"
                fix = "rerun the same build command to finish it (finished shards are kept)"
            else:
                what, fix = (
                    "is not a kgkd teacher cache (no index.json)",
                    "give the folder a cache was built or exported to",
                )
            raise CacheError(
                f"teacher cache folder {folder} {what}; {fix}, or build it with "
                f"`kgkd teachers cache --teacher {teacher} --domain DOMAIN --out {folder}`"
            )
        try:
            header = json.loads(index.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise CacheError(
                f"{index} is not valid JSON ({exc}); {rebuild_hint(teacher)}"
            ) from None
        cache = cls(header, None, folder)
        cache.validate()
        return cache

    def validate(self) -> None:
        """Check header and data agree. Single file: every tensor scanned. Folder: shard list and file sizes."""
        h, src = self.header, f" in {self.path}" if self.path else ""
        sharded = h.get("layout") == "sharded"
        version = SHARDED_VERSION if sharded else VERSION
        if h.get("format") != FORMAT or h.get("version") != version:
            raise CacheError(
                f"{self.path}: not a kgkd teacher cache v{version} (header format {h.get('format')!r} v{h.get('version')!r})"
            )
        where, hint = self._where() + src, rebuild_hint(self.teacher_name)
        if not sharded:
            check_tensors(
                self.tensors,
                self.num_samples,
                self.num_labels,
                self.top_k,
                self.feature_shapes,
                where,
                hint,
            )
            return
        assert self.path is not None
        expected = 0
        for i, shard in enumerate(self.shards):
            f = self.path / str(shard["file"])
            if shard["start"] != expected or shard["file"] != shard_name(i):
                raise CacheError(
                    f"{where}: index.json lists {shard['file']} at samples {shard['start']}.., expected {expected}..; {hint}"
                )
            if not f.is_file():
                raise CacheError(
                    f"{where}: shard {f.name} is missing; rerun the build to rebuild it, or {hint}"
                )
            if f.stat().st_size != shard["bytes"]:
                raise CacheError(
                    f"{where}: shard {f.name} is truncated or corrupt ({f.stat().st_size} bytes, index says "
                    f"{shard['bytes']}); rerun the build to rebuild it, or {hint}"
                )
            expected = int(shard["stop"])
        if expected != self.num_samples:
            raise CacheError(
                f"{where}: the shards cover samples 0..{expected - 1}, not 0..{self.num_samples - 1}; {hint}"
            )

    def verify(self, deep: bool = False) -> None:
        """Check every shard's sha256 against the index (``deep``: also shapes and finite values)."""
        if not self.is_sharded:
            return
        assert self.path is not None
        hint = rebuild_hint(self.teacher_name)
        for i, shard in enumerate(self.shards):
            f = self.path / str(shard["file"])
            if sha256_file(f) != shard["sha256"]:
                raise CacheError(
                    f"{self._where()} in {self.path}: shard {f.name} (samples {shard['start']}..{shard['stop'] - 1}) "
                    f"is corrupt (sha256 differs from index.json); rerun the build to rebuild it, or {hint}"
                )
            if deep:
                reader = self._reader(i)
                check_tensors({k: reader.read_all(k) for k in reader.names()}, shard["stop"] - shard["start"],
                              self.num_labels, self.top_k, self.feature_shapes,
                              f"{self._where()} shard {f.name}", hint, start=shard["start"])  # fmt: skip

    @classmethod
    def import_(
        cls,
        path: str | os.PathLike[str],
        expected_num_samples: int | None = None,
        expected_labels: int | Sequence[str] | None = None,
        expected_fingerprint: str | None = None,
        dest: str | os.PathLike[str] | None = None,
    ) -> TeacherCache:
        """Open a cache exported by another site (file or folder) and check it fits the local transfer set.

        A folder is verified shard by shard (checksums, shapes, finite values) before use.

        Args:
            expected_num_samples: size of the local transfer set.
            expected_labels: the teacher's label count, or its label names (order matters).
            expected_fingerprint: reject exports made on other data/weights.
            dest: copy the import here (atomic, per shard), e.g. into the local cache folder.
        """
        cache = cls.load(path, expected_fingerprint=expected_fingerprint)
        cache.verify(deep=True)
        where = f"{cache._where()} imported from {path}"
        if expected_num_samples is not None and cache.num_samples != expected_num_samples:
            raise CacheError(
                f"{where} covers {cache.num_samples} samples but the transfer set has {expected_num_samples}; "
                "the exporting site must run its teacher over the same transfer set"
            )
        if expected_labels is not None:
            if isinstance(expected_labels, int):
                if cache.num_labels != expected_labels:
                    raise CacheError(
                        f"{where} has {cache.num_labels} labels, expected {expected_labels}; check which teacher was exported"
                    )
            elif tuple(expected_labels) != cache.label_names:
                raise CacheError(
                    f"{where} has labels {list(cache.label_names)}, expected {list(expected_labels)}; "
                    "check which teacher was exported and its label order"
                )
        if dest is not None:
            cache.save(dest)
        return cache

    # -- reading ------------------------------------------------------------
    def _reader(self, i: int) -> ShardReader:
        """Shard ``i`` opened (LRU); its own metadata is checked against the index the first time."""
        assert self.path is not None
        shard = self.shards[i]
        try:
            reader = self._pool.get(self.path / str(shard["file"]))
        except CacheError as exc:
            raise CacheError(
                f"{self._where()}: {exc}; rerun the build to rebuild it, or {rebuild_hint(self.teacher_name)}"
            ) from None
        if i not in self._opened:
            try:
                meta = json.loads(reader.metadata.get("kgkd_shard", "{}"))
            except ValueError:
                meta = {}
            if (meta.get("fingerprint"), meta.get("start"), meta.get("stop")) != (
                self.fingerprint,
                shard["start"],
                shard["stop"],
            ):
                raise CacheError(
                    f"{self._where()}: shard {shard['file']} in {self.path} belongs to another build "
                    f"(its header: {meta or 'none'}); rerun the build to rebuild it, or {rebuild_hint(self.teacher_name)}"
                )
            rows = shard["stop"] - shard["start"]
            for key in self._keys():
                if key not in reader.layout or reader.shape(key)[0] != rows:
                    raise CacheError(
                        f"{self._where()}: shard {shard['file']} lacks '{key}' for {rows} rows; {rebuild_hint(self.teacher_name)}"
                    )
            self._opened.add(i)
        return reader

    def _gather(self, key: str, idx: Tensor) -> Tensor:
        """Rows ``idx`` of tensor ``key`` in storage dtype, from memory or from the shards."""
        if self._tensors is not None:
            return self._tensors[key][idx]
        size = int(self.header["shard_size"])
        pos = idx.numpy()
        shard_of = pos // size
        out: Tensor | None = None
        for s in np.unique(shard_of):
            mask = shard_of == s
            rows = self._reader(int(s)).rows(key, pos[mask] - int(s) * size)
            if out is None:
                out = torch.empty((len(pos), *rows.shape[1:]), dtype=rows.dtype)
            out[torch.from_numpy(mask)] = rows
        assert out is not None
        return out

    def lookup(self, index: Tensor, device: torch.device | str | None = None) -> Any:
        """Teacher outputs of dataset positions ``index [B]`` as a ``ModelOutput`` (fp32).

        Top-k caches are expanded to full logits, the missing labels filled with
        (row minimum − 1e4) so their softmax probability is 0.
        """
        from kgkd.models.base import ModelOutput

        idx = torch.as_tensor(index).long()
        target = torch.device(device) if device is not None else idx.device
        idx = idx.cpu().flatten()
        bad = idx[(idx < 0) | (idx >= self.num_samples)]
        if bad.numel():
            raise CacheError(
                f"{self._where()}: sample index {bad[:5].tolist()} out of range; the cache was built on another "
                f"(larger) dataset — rebuild it for this one"
            )
        if self.top_k is None:
            logits = self._gather(LOGITS, idx).float()
        else:
            values = self._gather(TOPK_V, idx).float()
            fill = values.min(dim=1, keepdim=True).values - TOPK_GAP
            logits = fill.expand(-1, self.num_labels).clone()
            logits.scatter_(1, self._gather(TOPK_I, idx).long(), values)
        features = {f: self._gather(FEAT + f, idx).float().to(target) for f in self.feature_shapes}
        return ModelOutput(logits.to(target), features)

    def iter_shards(self, show_progress: bool = False) -> Any:
        """Yield ``(start, stop, tensors)`` shard by shard (constant memory; one range for a single file)."""
        if not self.is_sharded:
            yield 0, self.num_samples, self.tensors
            return
        for i, shard in enumerate(
            tqdm(self.shards, disable=not show_progress, desc="shards", leave=False)
        ):
            reader = self._reader(i)
            yield shard["start"], shard["stop"], {k: reader.read_all(k) for k in self._keys()}


__all__ = ["LAYOUTS", "TeacherCache"]
