"""Teacher cache: run a teacher once over a dataset, keep its outputs on disk.

Teachers are expensive and frozen, so every distillation run over the same data
reads their logits and chosen features from a cache instead of running them. A
cache is ONE safetensors file: tensors ``logits`` (or ``logits.topk_values`` +
``logits.topk_indices`` for large label spaces, trl #3055) and ``feature.<name>``,
plus a JSON header in the safetensors metadata::

    {"format": "kgkd-teacher-cache", "version": 1, "fingerprint": ..., "teacher": ...,
     "label_names": [...], "num_samples": N, "num_labels": C, "feature_shapes": {...},
     "dtype": "fp16", "top_k": null, "preprocessing": ..., "dataset_fingerprint": ...,
     "created": ISO-8601}

The fingerprint is ``sha256(teacher.fingerprint() + dataset.fingerprint() +
preprocessing)``: any change of weights, data or preprocessing makes the cache
stale. Because a cache is one self-describing file it is also the unit of
cross-site hand-over: a site that may not share its data or teacher exports its
teacher's outputs on a shared transfer set (:meth:`TeacherCache.export`) and the
distilling site imports them (:meth:`TeacherCache.import_`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from kgkd.errors import CacheError
from kgkd.paths import cache_dir
from kgkd.utils.io import atomic_path
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

FORMAT = "kgkd-teacher-cache"
VERSION = 1
DTYPES: dict[str, torch.dtype] = {"fp16": torch.float16, "fp32": torch.float32}
#: Reconstructed top-k logits fill the missing labels with (row minimum − this).
TOPK_GAP = 1e4
_LOGITS, _TOPK_V, _TOPK_I, _FEAT = "logits", "logits.topk_values", "logits.topk_indices", "feature."


def cache_fingerprint(
    teacher_fingerprint: str, dataset_fingerprint: str, preprocessing: str = ""
) -> str:
    """sha256 of teacher fingerprint + dataset fingerprint + preprocessing description."""
    payload = f"{teacher_fingerprint}|{dataset_fingerprint}|{preprocessing}"
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def default_cache_path(teacher_name: str, dataset_name: str) -> Path:
    """``<KGKD_CACHE_DIR>/teacher_outputs/<teacher>__<dataset>.safetensors``."""
    return cache_dir() / "teacher_outputs" / f"{teacher_name}__{dataset_name}.safetensors"


def _rebuild_hint(teacher: str) -> str:
    return (
        f"delete it and rebuild with TeacherCache.build(...) or `kgkd teachers cache --teacher {teacher} --domain DOMAIN` "
        "(or ask the exporting site for a new export)"
    )


def _first_bad_rows(values: Tensor, index: Tensor, limit: int = 5) -> list[int]:
    """Dataset indices of the first rows of ``values`` holding NaN/inf."""
    bad = ~torch.isfinite(values.float().flatten(1)).all(dim=1)
    return index[bad][:limit].tolist()


def _dataset_fingerprint(dataset: Any, override: str | None) -> str:
    if override is not None:
        return override
    fp = getattr(dataset, "fingerprint", None)
    if not callable(fp):
        raise CacheError(
            f"dataset {type(dataset).__name__} has no fingerprint() method, so a cache of it could be "
            "reused after the data changed; pass dataset_fingerprint='<stable id of the data>'"
        )
    return str(fp())


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class TeacherCache:
    """Cached outputs of one teacher on one dataset (see module docstring).

    Build with :meth:`build` / :meth:`get_or_build`, open with :meth:`load` or
    :meth:`import_`, read with :meth:`lookup`. Tensors are held in memory (caches
    are per-transfer-set and compact: fp16, optionally top-k).
    """

    def __init__(
        self, header: dict[str, Any], tensors: dict[str, Tensor], path: Path | None = None
    ) -> None:
        self.header = header
        self.tensors = tensors
        self.path = path

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

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (
            f"TeacherCache(teacher={self.teacher_name!r}, samples={self.num_samples}, labels={self.num_labels}, "
            f"features={list(self.feature_shapes)}, dtype={self.header['dtype']}, top_k={self.top_k})"
        )

    def _where(self) -> str:
        return f"teacher '{self.teacher_name}' cache (samples 0..{self.num_samples - 1})"

    # -- building -----------------------------------------------------------
    @classmethod
    def build(
        cls,
        teacher: nn.Module,
        dataset: Dataset,
        collate_fn: Callable[[list[Any]], Mapping[str, Any]],
        batch_size: int = 64,
        features: Sequence[str] = (),
        path: str | os.PathLike[str] | None = None,
        dtype: str = "fp16",
        top_k: int | None = None,
        preprocessing: str = "",
        dataset_fingerprint: str | None = None,
        device: torch.device | str | None = None,
        show_progress: bool = True,
    ) -> TeacherCache:
        """Run ``teacher`` over ``dataset`` once (inference mode, batched) and save the cache.

        Args:
            teacher: a ``Teacher`` (``name``, ``fingerprint()``, ``forward(batch) -> ModelOutput``).
            dataset: items carry ``index`` (position in the dataset); needs ``fingerprint()``
                unless ``dataset_fingerprint`` is given.
            collate_fn: builds the teacher's batch dicts (must keep ``index``).
            features: names of ``ModelOutput.features`` to store.
            path: cache file (default :func:`default_cache_path`); written atomically.
            dtype: ``"fp16"`` (default, half the size) or ``"fp32"``.
            top_k: store only the k largest logits per sample (values + indices).
            preprocessing: description of any input preprocessing (part of the fingerprint).
            device: where the teacher runs (default: where its parameters are); it is moved
                there for the build and back to its own device afterwards.
        """
        name = str(getattr(teacher, "name", type(teacher).__name__))
        if dtype not in DTYPES:
            raise CacheError(
                f"teacher '{name}' cache: dtype must be one of {sorted(DTYPES)}, got '{dtype}'"
            )
        num = len(dataset)  # type: ignore[arg-type]
        if num == 0:
            raise CacheError(f"teacher '{name}' cache: the dataset is empty, nothing to cache")
        data_fingerprint = _dataset_fingerprint(dataset, dataset_fingerprint)
        fingerprint = cache_fingerprint(teacher.fingerprint(), data_fingerprint, preprocessing)  # type: ignore[operator]
        if path is None:
            path = default_cache_path(name, str(getattr(dataset, "name", type(dataset).__name__)))
        param = next(teacher.parameters(), None)
        home = param.device if param is not None else torch.device("cpu")
        device = home if device is None else torch.device(device)
        store = DTYPES[dtype]
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn)
        tensors: dict[str, Tensor] = {}
        seen = torch.zeros(num, dtype=torch.bool)
        was_training = teacher.training
        teacher.eval()
        teacher.to(device)  # run where asked; moved back afterwards
        try:
            for batch in tqdm(
                loader, desc=f"caching {name}", disable=not show_progress, leave=False
            ):
                if "index" not in batch:
                    raise CacheError(
                        f"teacher '{name}' cache: batches have no 'index' key (keys: {sorted(batch)}); "
                        "the collate_fn must pass each item's dataset index through"
                    )
                index = torch.as_tensor(batch["index"]).long().cpu()
                if ((index < 0) | (index >= num)).any() or seen[index.clamp(0, num - 1)].any():
                    raise CacheError(
                        f"teacher '{name}' cache: batch indices {index.tolist()[:8]} are out of range "
                        f"0..{num - 1} or repeat earlier ones; dataset items must carry their own position as 'index'"
                    )
                with torch.inference_mode():  # the buffers below stay normal (editable) tensors
                    out = teacher(_to_device(batch, device))
                cls._store_batch(tensors, out, index, num, name, features, store, top_k)
                seen[index] = True
        finally:
            teacher.train(was_training)
            teacher.to(home)
        if not seen.all():
            missing = (~seen).nonzero().flatten()[:5].tolist()
            raise CacheError(
                f"teacher '{name}' cache: samples {missing} (of 0..{num - 1}) were never produced by the loader"
            )
        label_names = list(getattr(teacher, "label_names", ()) or ())
        header = {
            "format": FORMAT,
            "version": VERSION,
            "fingerprint": fingerprint,
            "teacher": name,
            "label_names": label_names,
            "num_samples": num,
            "num_labels": int(tensors["num_labels"].item()),
            "feature_shapes": {f: list(tensors[_FEAT + f].shape[1:]) for f in features},
            "dtype": dtype,
            "top_k": top_k,
            "preprocessing": preprocessing,
            "dataset_fingerprint": data_fingerprint,  # lets an importer check the transfer set
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        del tensors["num_labels"]
        cache = cls(header, tensors, Path(path))
        cache.save(path)
        log.info("cached %s: %d samples → %s", name, num, path)
        return cache

    @staticmethod
    def _store_batch(
        tensors: dict[str, Tensor],
        out: Any,
        index: Tensor,
        num: int,
        name: str,
        features: Sequence[str],
        store: torch.dtype,
        top_k: int | None,
    ) -> None:
        """Check one batch of teacher outputs and write it into the preallocated tensors."""
        where = f"teacher '{name}' cache (samples {int(index.min())}..{int(index.max())})"
        items = {"logits": out.logits.detach().cpu()}
        for f in features:
            if f not in (out.features or {}):
                raise CacheError(
                    f"{where}: the teacher returns no feature '{f}' (it has: {', '.join(sorted(out.features or {})) or 'none'})"
                )
            items[_FEAT + f] = out.features[f].detach().cpu()
        for key, value in items.items():
            if value.shape[0] != index.shape[0]:
                raise CacheError(
                    f"{where}: '{key}' has {value.shape[0]} rows for a batch of {index.shape[0]} samples"
                )
            bad = _first_bad_rows(value, index)
            if bad:
                raise CacheError(
                    f"{where}: '{key}' holds NaN/inf for samples {bad}; fix the teacher or its inputs"
                )
            if not torch.isfinite(value.to(store)).all():
                bad = _first_bad_rows(value.to(store), index)
                raise CacheError(
                    f"{where}: '{key}' overflows {store} for samples {bad}; build the cache with dtype='fp32'"
                )
        logits = items.pop("logits")
        if top_k is not None:
            if not 0 < top_k <= logits.shape[1]:
                raise CacheError(
                    f"{where}: top_k={top_k} must be in 1..{logits.shape[1]} (the teacher's label count)"
                )
            values, indices = logits.topk(top_k, dim=1)
            items[_TOPK_V], items[_TOPK_I] = values, indices.to(torch.int32)
        else:
            items[_LOGITS] = logits
        if "num_labels" not in tensors:
            tensors["num_labels"] = torch.tensor(logits.shape[1])
            for key, value in items.items():
                dt = value.dtype if key == _TOPK_I else store
                tensors[key] = torch.zeros((num, *value.shape[1:]), dtype=dt)
        for key, value in items.items():
            if tuple(value.shape[1:]) != tuple(tensors[key].shape[1:]):
                raise CacheError(
                    f"{where}: '{key}' has per-sample shape {list(value.shape[1:])} but earlier batches had "
                    f"{list(tensors[key].shape[1:])}; the teacher must return fixed-shape outputs (pad inputs to a fixed length)"
                )
            tensors[key][index] = value.to(tensors[key].dtype)

    # -- persistence --------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the cache as one safetensors file (atomic) and return its path."""
        target = Path(path)
        with atomic_path(target) as tmp:
            save_file(
                {k: v.contiguous() for k, v in self.tensors.items()},
                str(tmp),
                metadata={"kgkd_cache": json.dumps(self.header)},
            )
        self.path = target
        return target

    def export(self, path: str | os.PathLike[str]) -> Path:
        """Write a single-file copy for another site (same format as the cache itself)."""
        return TeacherCache(self.header, self.tensors).save(path)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], expected_fingerprint: str | None = None
    ) -> TeacherCache:
        """Open a cache file; validate it; ``expected_fingerprint`` guards against stale caches."""
        path = Path(path)
        if not path.is_file():
            raise CacheError(
                f"teacher cache file {path} does not exist; build it with TeacherCache.build(...) or `kgkd teachers cache --teacher NAME --domain DOMAIN`"
            )
        teacher = path.stem.split("__")[0]
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CacheError(
                f"teacher cache file {path} is truncated or corrupt ({exc}); {_rebuild_hint(teacher)}"
            ) from None
        try:
            header = json.loads(meta["kgkd_cache"])
        except (KeyError, json.JSONDecodeError):
            raise CacheError(
                f"{path} is a safetensors file without a kgkd cache header; {_rebuild_hint(teacher)}"
            ) from None
        cache = cls(header, tensors, path)
        cache.validate()
        if expected_fingerprint is not None and cache.fingerprint != expected_fingerprint:
            raise CacheError(
                f"{cache._where()} in {path} is stale: fingerprint {cache.fingerprint[:12]}… does not match the "
                f"expected {expected_fingerprint[:12]}… (teacher weights, data or preprocessing changed); "
                f"{_rebuild_hint(cache.teacher_name)}"
            )
        return cache

    def validate(self) -> None:
        """Check header and tensors agree (format, counts, shapes, finite values, index range)."""
        h, where, src = self.header, None, f" in {self.path}" if self.path else ""
        if h.get("format") != FORMAT or h.get("version") != VERSION:
            raise CacheError(
                f"{self.path}: not a kgkd teacher cache v{VERSION} (header format {h.get('format')!r} v{h.get('version')!r})"
            )
        where = self._where() + src
        n, c, k = self.num_samples, self.num_labels, self.top_k
        expected: dict[str, tuple[int, ...]] = {
            _FEAT + f: (n, *s) for f, s in self.feature_shapes.items()
        }
        if k is None:
            expected[_LOGITS] = (n, c)
        else:
            expected[_TOPK_V] = expected[_TOPK_I] = (n, k)
        for key, shape in expected.items():
            if key not in self.tensors:
                raise CacheError(
                    f"{where}: tensor '{key}' is missing; {_rebuild_hint(self.teacher_name)}"
                )
            if tuple(self.tensors[key].shape) != shape:
                raise CacheError(
                    f"{where}: tensor '{key}' has shape {list(self.tensors[key].shape)} but the header says {list(shape)}; "
                    f"{_rebuild_hint(self.teacher_name)}"
                )
        for key, value in self.tensors.items():
            if key == _TOPK_I:
                if ((value < 0) | (value >= c)).any():
                    raise CacheError(
                        f"{where}: top-k label indices outside 0..{c - 1}; {_rebuild_hint(self.teacher_name)}"
                    )
                continue
            bad = _first_bad_rows(value, torch.arange(n))
            if bad:
                raise CacheError(
                    f"{where}: '{key}' holds NaN/inf for samples {bad}; {_rebuild_hint(self.teacher_name)}"
                )

    @classmethod
    def get_or_build(
        cls,
        teacher: nn.Module,
        dataset: Dataset,
        collate_fn: Callable[[list[Any]], Mapping[str, Any]],
        path: str | os.PathLike[str] | None = None,
        preprocessing: str = "",
        dataset_fingerprint: str | None = None,
        **build_kwargs: Any,
    ) -> TeacherCache:
        """Reuse the cache at ``path`` when its fingerprint is current, else (re)build it.

        A stale or unreadable cache is logged and rebuilt; ``build_kwargs`` go to :meth:`build`.
        """
        name = str(getattr(teacher, "name", type(teacher).__name__))
        if path is None:
            path = default_cache_path(name, str(getattr(dataset, "name", type(dataset).__name__)))
        fingerprint = cache_fingerprint(
            teacher.fingerprint(), _dataset_fingerprint(dataset, dataset_fingerprint), preprocessing
        )  # type: ignore[operator]
        if Path(path).is_file():
            try:
                cache = cls.load(path, expected_fingerprint=fingerprint)
                log.info("reusing teacher cache %s (%d samples)", path, cache.num_samples)
                return cache
            except CacheError as exc:
                log.warning("rebuilding teacher cache of '%s': %s", name, exc)
        return cls.build(
            teacher,
            dataset,
            collate_fn,
            path=path,
            preprocessing=preprocessing,
            dataset_fingerprint=dataset_fingerprint,
            **build_kwargs,
        )

    @classmethod
    def import_(
        cls,
        path: str | os.PathLike[str],
        expected_num_samples: int | None = None,
        expected_labels: int | Sequence[str] | None = None,
        expected_fingerprint: str | None = None,
        dest: str | os.PathLike[str] | None = None,
    ) -> TeacherCache:
        """Open a cache exported by another site and check it fits the local transfer set.

        Args:
            expected_num_samples: size of the local transfer set.
            expected_labels: the teacher's label count, or its label names (order matters).
            expected_fingerprint: reject exports made on other data/weights.
            dest: copy the import here (atomic), e.g. into the local cache folder.
        """
        cache = cls.load(path, expected_fingerprint=expected_fingerprint)
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
            logits = self.tensors[_LOGITS][idx].float()
        else:
            values = self.tensors[_TOPK_V][idx].float()
            fill = values.min(dim=1, keepdim=True).values - TOPK_GAP
            logits = fill.expand(-1, self.num_labels).clone()
            logits.scatter_(1, self.tensors[_TOPK_I][idx].long(), values)
        features = {f: self.tensors[_FEAT + f][idx].float().to(target) for f in self.feature_shapes}
        return ModelOutput(logits.to(target), features)


class CachedTeacher(nn.Module):
    """A stand-in for a teacher that reads its outputs from a :class:`TeacherCache`.

    ``forward(batch)`` looks up ``batch["index"]``; ``name``, ``label_names``,
    ``num_labels`` and ``fingerprint()`` mirror the cached teacher's.
    """

    def __init__(self, cache: TeacherCache) -> None:
        super().__init__()
        self.cache = cache
        self.name = cache.teacher_name
        self.label_names = cache.label_names
        self.feature_names = tuple(cache.feature_shapes)

    @property
    def num_labels(self) -> int:
        return self.cache.num_labels

    def fingerprint(self) -> str:
        return self.cache.fingerprint

    def forward(self, batch: Mapping[str, Any]) -> Any:
        if "index" not in batch:
            raise CacheError(
                f"CachedTeacher '{self.name}' needs batch['index'] (dataset positions) but the batch has keys "
                f"{sorted(batch)}; use a collate_fn that keeps 'index'"
            )
        return self.cache.lookup(batch["index"])

    def extra_repr(self) -> str:
        return repr(self.cache)
