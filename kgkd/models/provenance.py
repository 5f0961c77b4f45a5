"""What trained a teacher checkpoint: its training settings and their fingerprint.

A trained teacher folder records, in ``kgkd_teacher.json``, the settings that produced it
(``training``: kind, domain, data fingerprint, limit, epochs, trainable layers, max_length,
seed, base model, lr, batch size) and ``training_fingerprint`` = short sha256 over them.
A recipe that asks for other settings gets its own checkpoint, kept next to the first in
``teacher_<domain>@<fingerprint>`` — a checkpoint is never reused by name alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from kgkd.models.checkpoint import read_json

META_NAME = "kgkd_teacher.json"
TRAINING_KEY = "training"
FINGERPRINT_KEY = "training_fingerprint"
#: Separates a teacher name from the training fingerprint in a side-by-side folder name.
VARIANT_SEP = "@"
FINGERPRINT_LEN = 12

#: Settings shown by ``kgkd teachers list`` (in this order) when a checkpoint records them.
SHOWN_SETTINGS: tuple[str, ...] = (
    "kind", "limit", "epochs", "trainable_layers", "max_length", "lr", "seed", "base_model",
)  # fmt: skip


def settings_fingerprint(settings: dict[str, Any]) -> str:
    """Short sha256 of the JSON of ``settings`` (key order does not matter)."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:FINGERPRINT_LEN]


def variant_dir(base: str | os.PathLike[str], fingerprint: str) -> Path:
    """The side-by-side folder ``<base>@<fingerprint>`` for a teacher trained with other settings."""
    base = Path(base)
    return base.with_name(f"{base.name}{VARIANT_SEP}{fingerprint}")


def read_meta(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``kgkd_teacher.json`` of ``folder``, or None when the folder has none."""
    file = Path(folder) / META_NAME
    return read_json(file) if file.is_file() else None


def recorded_fingerprint(meta: dict[str, Any] | None) -> str | None:
    """The training fingerprint a checkpoint's metadata records (None: older checkpoint, or registered)."""
    if not meta:
        return None
    fp = meta.get(FINGERPRINT_KEY)
    return str(fp) if fp else None


def describe_settings(meta: dict[str, Any]) -> str:
    """One line of a checkpoint's training settings, e.g. ``kind=hf limit=400 epochs=2 ...``."""
    settings = meta.get(TRAINING_KEY)
    if not isinstance(settings, dict):
        if meta.get("registered"):
            return f"registered from {meta.get('source', '?')} ({meta.get('kind')})"
        return "training settings not recorded (trained by an older kgkd)"
    shown = {**{k: settings.get(k) for k in SHOWN_SETTINGS if k in settings}, **settings}
    shown["limit"] = "all" if shown.get("limit") is None else shown["limit"]
    parts = [f"{k}={v}" for k, v in shown.items() if k not in ("domain", "data") and v is not None]
    return " ".join(parts) + f" fp={meta.get(FINGERPRINT_KEY)}"


def settings_diff(recorded: dict[str, Any], wanted: dict[str, Any]) -> str:
    """``key: recorded → wanted`` for every setting that differs (for error and log messages)."""
    keys = sorted(set(recorded) | set(wanted))
    diffs = [f"{k}: {recorded.get(k)!r} -> {wanted.get(k)!r}" for k in keys if recorded.get(k) != wanted.get(k)]
    return "; ".join(diffs) or "none"
