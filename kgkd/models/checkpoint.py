"""Checkpoint folders: safetensors weights + JSON config, written atomically, read with clear errors.

Every model kgkd saves (trained teachers, students) is a folder. It is written into a
temporary sibling folder first and renamed into place only once complete, so a crash never
leaves a half-written checkpoint under the final name. Reading never unpickles anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kgkd.errors import CheckpointError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temp folder next to ``path``; on success it replaces ``path``.

    An existing folder at ``path`` is moved aside and deleted only after the new one is in
    place; on error the temp folder is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        old: Path | None = None
        if target.exists():
            old = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            )
            old.rmdir()
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_weights(state_dict: dict[str, torch.Tensor], path: str | os.PathLike[str]) -> None:
    """Save a state dict as safetensors (tensors made contiguous, shared storage cloned)."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    save_file(tensors, str(path))


def load_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a safetensors file; a missing or truncated/corrupt file raises CheckpointError naming it."""
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(
            f"weights file {file} does not exist; re-save the checkpoint folder {file.parent}"
        )
    try:
        return load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"weights file {file} is corrupt or truncated ({exc}); delete the folder {file.parent} and "
            "re-create the checkpoint"
        ) from None


def check_safetensors(path: str | os.PathLike[str]) -> None:
    """Validate a safetensors file's header and size without loading it into memory."""
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(
            f"weights file {file} does not exist; re-save the checkpoint folder {file.parent}"
        )
    try:
        with open(file, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("file shorter than the 8-byte header length")
            header_len = int.from_bytes(head, "little")
            header = json.loads(fh.read(header_len).decode("utf-8"))
        end = max(
            (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0
        )
        expected = 8 + header_len + end
        actual = file.stat().st_size
        if actual != expected:
            raise ValueError(f"expected {expected} bytes, found {actual}")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise CheckpointError(
            f"weights file {file} is corrupt or truncated ({exc}); delete the folder {file.parent} and "
            "re-create the checkpoint"
        ) from None


def write_json(path: str | os.PathLike[str], obj: dict[str, Any]) -> None:
    """Write ``obj`` as pretty JSON (non-atomic: used inside an :func:`atomic_dir`)."""
    Path(path).write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON object; missing or malformed files raise CheckpointError naming the file and line."""
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(
            f"checkpoint file {file} does not exist; the folder {file.parent} is incomplete"
        )
    try:
        obj = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{file}:{exc.lineno}: invalid JSON ({exc.msg}); re-create the checkpoint"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{file}: expected a JSON object, found {type(obj).__name__}")
    return obj
