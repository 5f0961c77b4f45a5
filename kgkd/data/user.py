"""User domains: bring your own data, stored next to (never inside) the shipped data.

``add_user_domain("hotel_reviews", "reviews.csv")`` (CLI: ``kgkd data add``) reads and checks
the file (``kgkd.data.user_files``), splits it with the shipped rule (stratified per label,
seeded; unlabelled rows, label -1, are one more stratum), writes it in kgkd's own format —
text ``text/<name>.jsonl.gz``, images ``images/<name>.npz`` — into the user data folder and
records counts, provenance and sha256 in that folder's ``manifest.json``. From then on
``load_domain(name, split)``, ``MultiDomainDataset`` and the recipes find the domain like a
shipped one (``kgkd.data.domains.get_spec`` falls back to ``user_spec``); the knowledge graph
only needs a domain node with the same local name.

User data folder (``user_data_dir()``): ``$KGKD_USER_DATA_DIR`` if set; else ``<data_dir>/user``
when the data dir is a checkout or ``$KGKD_DATA_DIR``; else ``$XDG_DATA_HOME/kgkd/user``
(``~/.local/share/kgkd/user``) so an installed package is never written into.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from kgkd.data.specs import DIGIT_LABELS, DOMAINS, MODALITIES, SENTIMENT_LABELS, DomainSpec
from kgkd.data.splits import SPLITS, stratified_split
from kgkd.data.storage import read_manifest, sha256_file, write_image_arrays
from kgkd.data.user_files import SPLIT_CODES, UserRows, lazy_index_path, read_user_file
from kgkd.errors import DataError, UnknownDatasetError
from kgkd.paths import data_dir, repo_root
from kgkd.utils.io import atomic_path, atomic_write_json
from kgkd.utils.logging import get_logger
from kgkd.utils.suggest import suggestion

log = get_logger(__name__)

__all__ = [
    "USER_DATA_ENV",
    "add_user_domain",
    "check_domain_name",
    "read_user_manifest",
    "remove_user_domain",
    "user_data_dir",
    "user_domain_names",
    "user_spec",
]

#: Environment variable naming the user data folder.
USER_DATA_ENV = "KGKD_USER_DATA_DIR"
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
#: Text files at least this large become lazily read domains (JSONL + byte-offset index, not gzip).
LAZY_BYTES = 64 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def user_data_dir() -> Path:
    """Folder of the user domains (see the module docstring for the lookup order)."""
    env = os.environ.get(USER_DATA_ENV)
    if env:
        return Path(env)
    if "KGKD_DATA_DIR" in os.environ or (repo_root() / "pyproject.toml").is_file():
        return data_dir() / "user"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kgkd" / "user"


def _manifest_path() -> Path:
    return user_data_dir() / MANIFEST_NAME


def read_user_manifest() -> dict[str, Any]:
    """The user manifest (``{"version", "domains": {name: entry}}``; empty when nothing was added)."""
    path = _manifest_path()
    try:
        manifest = read_manifest(path)
    except DataError:
        raise DataError(
            f"user data manifest {path} is not valid JSON; restore it or delete it and re-add your domains "
            "with `kgkd data add`"
        ) from None
    domains = manifest.get("domains")
    if manifest and not isinstance(domains, dict):
        raise DataError(
            f"user data manifest {path} has no 'domains' mapping; delete it and re-add your domains"
        )
    return {"version": manifest.get("version", MANIFEST_VERSION), "domains": dict(domains or {})}


def user_domain_names(modality: str | None = None) -> list[str]:
    """Names of the user domains (optionally of one modality), sorted."""
    entries = read_user_manifest()["domains"]
    return sorted(
        n for n, e in entries.items() if modality is None or e.get("modality") == modality
    )


def user_spec(name: str) -> DomainSpec | None:
    """The ``DomainSpec`` of user domain ``name``, or ``None`` when there is none."""
    entry = read_user_manifest()["domains"].get(name)
    if entry is None:
        return None
    src = entry.get("source", {})
    return DomainSpec(
        name=name,
        modality=entry["modality"],
        num_classes=len(entry["label_names"]),
        label_names=tuple(entry["label_names"]),
        file=entry["file"],
        source=f"user file {src.get('file', '?')} ({src.get('format', '?')})",
        licence="user data",
        citation="",
        description=entry.get("description", ""),
        shipped=False,
        manifest=MANIFEST_NAME,
        root=str(user_data_dir()),
        origin="user",
        rebuild=entry.get("command", f"kgkd data add {name} FILE --force"),
    )


def check_domain_name(name: str) -> str:
    """Return ``name`` if it can name a new user domain; else raise a DataError saying why."""
    if not _NAME.fullmatch(name):
        fixed = re.sub(r"\W+", "_", name).strip("_") or "my_domain"
        if fixed[0].isdigit():
            fixed = f"d_{fixed}"
        raise DataError(
            f"domain name '{name}' must start with a letter or '_' and hold only letters, digits and '_' "
            f"(it is also the local name of the domain's graph node); use e.g. '{fixed}'"
        )
    if name in DOMAINS:
        raise DataError(
            f"domain name '{name}' is taken by a shipped kgkd domain; pick another name for your data, e.g. '{name}_user'"
        )
    return name


def _fractions(val: float, test: float) -> tuple[float, float, float]:
    for flag, value in (("--val", val), ("--test", test)):
        if not 0.0 <= value < 1.0:
            raise DataError(f"{flag} {value} must be a share in [0, 1), e.g. {flag} 0.2")
    if val + test >= 1.0:
        raise DataError(
            f"--val {val} + --test {test} leave nothing to train on; keep their sum below 1"
        )
    return (round(1.0 - val - test, 10), val, test)


def _counts(labels: np.ndarray, split: np.ndarray, label_names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in SPLITS:
        y = labels[split == s]
        per = np.bincount(y[y >= 0], minlength=len(label_names))
        out[s] = {
            "total": len(y),
            "labelled": int((y >= 0).sum()),
            "per_class": {label_names[i]: int(c) for i, c in enumerate(per)},
        }
    return out


def _command(name: str, path: Path, options: dict[str, Any]) -> str:
    args = ["kgkd", "data", "add", name, str(path)]
    for flag, value in options.items():
        if value is not None:
            args += [flag, str(value)]
    return shlex.join([*args, "--force"])


def add_user_domain(
    name: str,
    path: str | os.PathLike[str],
    *,
    modality: str | None = None,
    text_column: str = "text",
    label_column: str | None = None,
    labels: tuple[str, ...] | list[str] | None = None,
    val: float = 0.1,
    test: float = 0.2,
    seed: int = 0,
    description: str = "",
    force: bool = False,
    max_sample_bytes: int | None = None,
    show_progress: bool = False,
    lazy: bool | None = None,
) -> dict[str, Any]:
    """Import a user's data file as domain ``name`` and return its manifest entry.

    Args:
        name: new domain name (== the local name of its graph node); may not be a shipped domain.
        path: CSV/TSV/JSONL/TXT (text) or NPZ (images) file, see ``kgkd.data.user_files``.
        modality: ``"text"``/``"image"``; ``None`` infers it from the suffix.
        text_column: column/key of the text.
        label_column: column/key of the label; ``None`` uses ``"label"`` when present (else unlabelled).
        labels: label names in index order (default: negative,positive for text, 0..9 for images).
        val: validation share; ``test``: test share; the rest is train.
        seed: seed of the stratified split.
        description: one line on the data (shown by ``kgkd data list``).
        force: replace an existing user domain of the same name.
        max_sample_bytes: longest line/sample accepted (default 8 MiB); longer ones are refused.
        show_progress: progress bars while reading the file and writing the domain.
        lazy: store a text domain as uncompressed JSONL + a byte-offset index, read text by text
            at training time (default: when the file is at least 64 MiB).

    Large files stream: the file is read twice (check + index by byte offset, then copy), one
    line at a time, so memory holds only one offset and label per sample.

    Raises:
        DataError: bad name, name clash, bad shares, or any problem in the file (see ``read_user_file``).
    """
    check_domain_name(name)
    if modality is not None and modality not in MODALITIES:
        raise DataError(f"--modality {modality!r} is not one of {list(MODALITIES)}")
    fractions = _fractions(val, test)
    existing = read_user_manifest()["domains"].get(name)
    if existing is not None and not force:
        raise DataError(
            f"user domain '{name}' already exists (from {existing.get('source', {}).get('file', '?')}); "
            f"pass --force to replace it, or remove it first with `kgkd data remove {name}`"
        )
    src = Path(path).expanduser().resolve()
    default_labels = (
        DIGIT_LABELS
        if (modality or ("image" if src.suffix.lower() == ".npz" else "text")) == "image"
        else SENTIMENT_LABELS
    )
    label_names = tuple(labels) if labels else default_labels
    if len(set(label_names)) != len(label_names) or any(not lab.strip() for lab in label_names):
        raise DataError(
            f"--labels {','.join(label_names)}: label names must be non-empty and distinct"
        )
    rows = read_user_file(src, label_names=label_names, modality=modality, text_column=text_column,
                          label_column=label_column, max_sample_bytes=max_sample_bytes,
                          show_progress=show_progress)  # fmt: skip
    split = stratified_split(rows.labels, fractions, seed)
    for s, share in zip(SPLITS, fractions):
        if share > 0 and not (split == s).any():
            flag = "--val" if s == "val" else "--test" if s == "test" else "--val/--test"
            raise DataError(
                f"{src}: {len(rows)} samples are too few for a {share:.0%} {s} split; add samples or change {flag}"
            )
    root = user_data_dir()
    lazy = rows.modality == "text" and (src.stat().st_size >= LAZY_BYTES if lazy is None else lazy)
    rel = (f"text/{name}.jsonl" if lazy else f"text/{name}.jsonl.gz") if rows.modality == "text" \
        else f"images/{name}.npz"  # fmt: skip
    _write(root / rel, name, rows, split, show_progress)
    options = {
        "--text-column": text_column if rows.modality == "text" and text_column != "text" else None,
        "--label-column": label_column,
        "--labels": ",".join(label_names) if labels else None,
        "--modality": modality,
        "--val": val,
        "--test": test,
        "--seed": seed,
    }
    entry: dict[str, Any] = {
        "modality": rows.modality,
        "label_names": list(label_names),
        "file": rel,
        "sha256": sha256_file(root / rel),
        "bytes": (root / rel).stat().st_size,
        "total": len(rows),
        "labelled": rows.num_labelled,
        "counts": _counts(rows.labels, split, label_names),
        "split": {"fractions": dict(zip(SPLITS, fractions)), "seed": seed},
        "source": {
            "file": str(src),
            "sha256": sha256_file(src),
            "format": rows.format,
            "text_column": text_column if rows.modality == "text" else None,
            "label_column": label_column,
            "skipped_blank_lines": rows.skipped,
        },
        "description": description
        or f"{len(rows)} {'texts' if rows.modality == 'text' else 'images'} from {src.name}"
        + (" (unlabelled)" if rows.num_labelled == 0 else f" ({rows.num_labelled} labelled)"),
        "command": _command(name, src, options),
    }
    if rows.images is not None:
        entry["shape"] = list(rows.images.shape[1:])
    manifest = read_user_manifest()  # re-read: keep entries another process added meanwhile
    manifest["domains"][name] = entry
    manifest["domains"] = dict(sorted(manifest["domains"].items()))
    atomic_write_json(
        _manifest_path(), {"version": MANIFEST_VERSION, "kind": "kgkd user data", **manifest}
    )
    log.info(
        "added user domain %s: %d samples (%d labelled) -> %s",
        name,
        len(rows),
        rows.num_labelled,
        root / rel,
    )
    return entry


def _write(target: Path, name: str, rows: UserRows, split: np.ndarray, show_progress: bool = False) -> None:
    if rows.texts is not None:
        records = ({"id": f"{name}-{i:06d}", "text": t, "label": int(y), "split": str(s)}
                   for i, (t, y, s) in enumerate(zip(rows.texts, rows.labels, split)))  # fmt: skip
        records = tqdm(records, total=len(rows), desc=f"writing {name}", unit="text", disable=not show_progress,
                       leave=False)  # fmt: skip
        if target.suffix == ".jsonl":
            _write_lazy_text(target, records, rows.labels, split)
        else:
            _write_text_stream(target, records)
        return
    assert rows.images is not None
    arrays: dict[str, np.ndarray] = {}
    for s in SPLITS:
        keep = split == s
        arrays[f"x_{s}"] = rows.images[keep]
        arrays[f"y_{s}"] = rows.labels[keep].astype(np.int64)
    write_image_arrays(target, arrays)


def _write_text_stream(target: Path, records: Iterable[dict[str, Any]]) -> None:
    """Gzipped JSON lines written record by record (bounded memory), atomically; gzip mtime 0 (reproducible)."""
    with atomic_path(target) as tmp, open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            for rec in records:
                gz.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
        raw.flush()
        os.fsync(raw.fileno())


def _write_lazy_text(target: Path, records: Iterable[dict[str, Any]], labels: np.ndarray, split: np.ndarray) -> None:
    """Plain JSON lines (atomic) plus ``<name>.index.npz``: each record's byte offset, label and split code."""
    offsets = np.empty(len(labels), dtype=np.int64)
    position = 0
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        for i, rec in enumerate(records):
            line = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
            offsets[i], position = position, position + len(line)
            fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
    codes = np.array([SPLIT_CODES.index(str(s)) for s in split], dtype=np.int8)
    with atomic_path(lazy_index_path(target)) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, offsets=offsets, labels=labels.astype(np.int64), splits=codes)


def remove_user_domain(name: str) -> Path:
    """Delete user domain ``name`` (its file and manifest entry); return the deleted file's path.

    Raises:
        DataError: ``name`` is a shipped domain.
        UnknownDatasetError: no user domain has that name (with a did-you-mean).
    """
    if name in DOMAINS:
        raise DataError(
            f"'{name}' is a shipped kgkd domain, not a user domain; only domains added with `kgkd data add` can be removed"
        )
    manifest = read_user_manifest()
    entry = manifest["domains"].pop(name, None)
    if entry is None:
        names = sorted(manifest["domains"])
        hint = suggestion(name, names)
        raise UnknownDatasetError(
            f"no user domain '{name}' in {user_data_dir()}.{hint} User domains: {', '.join(names) or 'none'}"
        )
    atomic_write_json(
        _manifest_path(), {"version": MANIFEST_VERSION, "kind": "kgkd user data", **manifest}
    )
    target = user_data_dir() / entry["file"]
    target.unlink(missing_ok=True)
    if target.suffix == ".jsonl":
        lazy_index_path(target).unlink(missing_ok=True)
    log.info("removed user domain %s (%s)", name, target)
    return target
