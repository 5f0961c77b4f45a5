"""Domain-tagged datasets over the built files.

``load_domain(name, split)`` gives a ``DomainDataset`` whose items are dicts
(text: ``{"text","label","domain","index"}``; image: ``{"image","label","domain","index"}``
with ``image`` a FloatTensor [1,H,W] in 0..1). ``index`` is the item's position in the
dataset — the teacher cache is keyed by it — and ``domain`` is the domain's position in a
``MultiDomainDataset``. ``fingerprint()`` changes whenever the file, split or subset does,
so stale teacher caches are detected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from kgkd.data.domains import get_spec
from kgkd.data.specs import DomainSpec
from kgkd.data.splits import check_split, stratified_subset
from kgkd.data.storage import read_image_arrays, read_manifest, read_text_records, sha256_file
from kgkd.data.user_files import LazyDomainFile, LazyTexts
from kgkd.errors import DataError, MissingDataError

#: Parsed files, keyed by (path, size, mtime): loading three splits reads the file once.
_FILE_CACHE: dict[tuple[str, int, int], tuple[str, Any]] = {}
_FILE_CACHE_SIZE = 16


def _load_file(spec: DomainSpec) -> tuple[str, Any]:
    """Return (sha256, parsed content) of a domain's file, checked against its manifest."""
    root = spec.root_dir
    path = root / spec.file
    if not path.is_file():
        raise MissingDataError(
            f"data file {path} of domain '{spec.name}' is missing; build it with `{spec.build_command}`"
        )
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _FILE_CACHE:
        return _FILE_CACHE[key]
    checksum = sha256_file(path)
    entry = read_manifest(root / spec.manifest).get("domains", {}).get(spec.name)
    if entry and entry.get("sha256") not in (None, checksum):
        raise MissingDataError(
            f"data file {path} does not match the sha256 in {root / spec.manifest} (corrupt or edited); "
            f"rebuild it with `{spec.build_command}`"
        )
    if spec.modality == "text" and path.suffix == ".jsonl":  # a large user domain: read text by text
        content: Any = LazyDomainFile.open(path)
    elif spec.modality == "text":
        content = read_text_records(path, spec.build_command)
    else:
        content = read_image_arrays(path, spec.build_command)
    if len(_FILE_CACHE) >= _FILE_CACHE_SIZE:  # the files are small; bound the count anyway
        _FILE_CACHE.pop(next(iter(_FILE_CACHE)))
    _FILE_CACHE[key] = (checksum, content)
    return checksum, content


class DomainDataset(Dataset):
    """One split of one domain; items are dicts tagged with ``domain`` and ``index``.

    Args:
        spec: the domain.
        split: ``"train"``, ``"val"`` or ``"test"``.
        labels: int64 labels, one per item.
        texts: the sentences (text domains).
        images: uint8 [N,H,W] (image domains).
        checksum: sha256 of the source file (feeds ``fingerprint``).
        limit: size of the seeded subset these items are, or None for the whole split (feeds ``fingerprint``).
        seed: seed of the subset (feeds ``fingerprint``).
        domain_id: value of every item's ``domain`` field.
        transform: optional callable applied to each item's text (str) or image (FloatTensor).
    """

    def __init__(
        self,
        spec: DomainSpec,
        split: str,
        labels: np.ndarray,
        *,
        texts: Sequence[str] | None = None,
        images: np.ndarray | None = None,
        checksum: str = "",
        limit: int | None = None,
        seed: int = 0,
        domain_id: int = 0,
        transform: Callable[[Any], Any] | None = None,
    ) -> None:
        self.spec = spec
        self.split = check_split(split)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.texts = texts if isinstance(texts, LazyTexts) else list(texts) if texts is not None else None
        self.images = images
        self.checksum = checksum
        self.limit = limit
        self.seed = seed
        self.domain_id = domain_id
        self.transform = transform

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def modality(self) -> str:
        return self.spec.modality

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.spec.label_names

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(
                f"index {index} out of range for domain '{self.name}' ({len(self)} items)"
            )
        index = index % len(self)
        item: dict[str, Any] = {
            "label": int(self.labels[index]),
            "domain": self.domain_id,
            "index": index,
        }
        if self.texts is not None:
            value: Any = self.texts[index]
            key = "text"
        else:
            assert self.images is not None
            value = torch.from_numpy(self.images[index]).float().div_(255.0).unsqueeze(0)
            key = "image"
        item[key] = self.transform(value) if self.transform is not None else value
        return item

    def class_counts(self) -> list[int]:
        """Number of labelled items per class (index = label); unlabelled items (-1) are not counted."""
        return np.bincount(self.labels[self.labels >= 0], minlength=self.num_classes).tolist()

    @property
    def num_labelled(self) -> int:
        """Items with a label (user domains may hold unlabelled items, label -1)."""
        return int((self.labels >= 0).sum())

    def fingerprint(self) -> str:
        """sha256 of (file checksum, split, limit, seed): equal fingerprints ⇒ identical items."""
        subset = "all" if self.limit is None else f"{self.limit}@{self.seed}"
        payload = f"{self.checksum}|{self.name}|{self.split}|{subset}"
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return f"DomainDataset(name={self.name!r}, split={self.split!r}, size={len(self)}, domain_id={self.domain_id})"


def load_domain(
    name: str,
    split: str = "train",
    limit: int | None = None,
    seed: int = 0,
    *,
    domain_id: int = 0,
    transform: Callable[[Any], Any] | None = None,
) -> DomainDataset:
    """Load one split of a built domain.

    Args:
        name: a domain of ``list_domains()``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        limit: keep a class-stratified, seeded subset of at most this many items (file order kept).
        seed: seed of that subset.
        domain_id: value of the items' ``domain`` field.
        transform: optional per-item transform of the text / image.

    Raises:
        UnknownDatasetError: ``name`` is not a known domain.
        DataError: bad split or limit.
        MissingDataError: the built file is absent or corrupt (message names the build command).
    """
    spec = get_spec(name)
    check_split(split)
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit={limit!r} for domain '{name}' must be a positive integer or None")
    checksum, content = _load_file(spec)
    texts: Sequence[str] | None = None
    images: np.ndarray | None = None
    if isinstance(content, LazyDomainFile):
        labels, texts = content.split(split)
    elif spec.modality == "text":
        rows = [r for r in content if r["split"] == split]
        labels = np.array([r["label"] for r in rows], dtype=np.int64)
        texts = [r["text"] for r in rows]
    else:
        labels = content[f"y_{split}"].astype(np.int64)
        images = content[f"x_{split}"]
    if limit is not None and limit >= len(labels):
        limit = None  # the whole split: same items, same fingerprint as no limit
    if limit is not None:
        keep = stratified_subset(labels, limit, seed)
        labels = labels[keep]
        if isinstance(texts, LazyTexts):
            texts = texts.take(keep)
        else:
            texts = [texts[i] for i in keep] if texts is not None else None
        images = images[keep] if images is not None else None
    return DomainDataset(
        spec,
        split,
        labels,
        texts=texts,
        images=images,
        checksum=checksum,
        limit=limit,
        seed=seed,
        domain_id=domain_id,
        transform=transform,
    )


class MultiDomainDataset(Dataset):
    """Several domains back to back; ``domain`` = position in the list, ``index`` = global position.

    Args:
        names_or_datasets: domain names (loaded with ``load_domain``) or ready ``DomainDataset``s.
        split: split to load for names.
        limit: per-domain subset size for names.
        seed: seed of those subsets.
    """

    def __init__(
        self,
        names_or_datasets: Sequence[str | DomainDataset],
        split: str = "train",
        limit: int | None = None,
        seed: int = 0,
    ) -> None:
        if not names_or_datasets:
            raise DataError("MultiDomainDataset needs at least one domain name or DomainDataset")
        self.datasets: list[DomainDataset] = [
            d if isinstance(d, DomainDataset) else load_domain(d, split, limit=limit, seed=seed)
            for d in names_or_datasets
        ]
        modalities = {d.modality for d in self.datasets}
        if len(modalities) > 1:
            raise DataError(
                f"MultiDomainDataset mixes modalities {sorted(modalities)} "
                f"({', '.join(f'{d.name}={d.modality}' for d in self.datasets)}); combine text and image domains separately"
            )
        self.split = split
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets])

    @property
    def domain_names(self) -> list[str]:
        return [d.name for d in self.datasets]

    @property
    def modality(self) -> str:
        return self.datasets[0].modality

    @property
    def labels(self) -> np.ndarray:
        return np.concatenate([d.labels for d in self.datasets])

    @property
    def domains(self) -> np.ndarray:
        """Domain position of every item."""
        return np.repeat(np.arange(len(self.datasets)), [len(d) for d in self.datasets])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(
                f"index {index} out of range for MultiDomainDataset ({len(self)} items)"
            )
        index = index % len(self)
        pos = int(np.searchsorted(self.offsets, index, side="right") - 1)
        item = self.datasets[pos][index - int(self.offsets[pos])]
        item["domain"] = pos
        item["index"] = index
        return item

    def fingerprint(self) -> str:
        """sha256 over the member fingerprints, in order."""
        joined = "|".join(d.fingerprint() for d in self.datasets)
        return hashlib.sha256(joined.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return f"MultiDomainDataset(domains={self.domain_names}, split={self.split!r}, size={len(self)})"


def data_file(name: str) -> Path:
    """Absolute path of a domain's built file (it may not exist yet)."""
    spec = get_spec(name)
    return spec.root_dir / spec.file
