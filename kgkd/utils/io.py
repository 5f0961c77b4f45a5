"""Atomic file writes: write to a temp file in the same folder, then rename.

A crash mid-write never leaves a half-written file under the final name. Whole
output folders (a run, a distilled student) are staged the same way by
:func:`staged_output_dir`: built in a hidden folder next to the target and moved
in only when complete, never over files kgkd did not just write.
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

from kgkd.errors import OutputExistsError

#: What was cleaned up after an interrupt or error (read by the CLI's Ctrl-C message).
_CLEANUP_NOTES: list[str] = []
#: Files completed by :func:`atomic_path` in this process (the newest few), for the same message.
_WRITTEN: list[Path] = []
_WRITTEN_KEEP = 20


def note_cleanup(note: str) -> None:
    """Record that something unfinished was removed (reported when the CLI is interrupted)."""
    _CLEANUP_NOTES.append(note)


def pop_cleanup_notes() -> list[str]:
    """The cleanup notes recorded so far (and forget them)."""
    notes = list(_CLEANUP_NOTES)
    _CLEANUP_NOTES.clear()
    return notes


def forget_written() -> None:
    """Start a new record of finished files (each CLI command reports only its own)."""
    _WRITTEN.clear()


def written_files() -> list[Path]:
    """Files this process finished writing atomically that still exist (newest last, at most 20)."""
    return [p for p in _WRITTEN if p.exists()]


def _current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success rename it onto ``path``.

    Use it with writers that want a file name (``safetensors.torch.save_file``,
    ``np.savez``, ``fig.savefig``)::

        with atomic_path("model.safetensors") as tmp:
            save_file(tensors, tmp)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; match a normal open()
    try:
        yield tmp
        os.replace(tmp, target)
        _WRITTEN.append(target)
        del _WRITTEN[:-_WRITTEN_KEEP]
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` as pretty JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


# --------------------------------------------------------------------------- output folders
def _describe_entries(folder: Path, limit: int = 4) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_output_dir(target: str | os.PathLike[str], overwrite: bool = False, flag: str = "--overwrite") -> Path:
    """Refuse ``target`` when it is a file, or a non-empty folder and ``overwrite`` is off.

    Raises:
        OutputExistsError: naming what the folder holds and the two ways out.
    """
    path = Path(target)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"output folder {path} is an existing file; give a folder path that is new or empty")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"output folder {path} already holds {_describe_entries(path)}; kgkd never replaces earlier results: "
            f"give a new or empty folder, or pass {flag} to replace kgkd's own outputs there (other files are kept)"
        )
    return path


def _make_parents(folder: Path) -> list[Path]:
    """``mkdir -p folder``; return the folders it created, deepest first."""
    created: list[Path] = []
    probe = folder
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; stops at the first one that is not empty
        try:
            folder.rmdir()
        except OSError:
            return


def _publish(stage: Path, target: Path, overwrite: bool, flag: str) -> None:
    """Move the staged outputs into ``target``: a rename when it is new, else entry by entry."""
    with contextlib.suppress(FileNotFoundError, OSError):
        if not target.exists():
            os.rename(stage, target)
            return
    check_output_dir(target, overwrite, flag)  # it appeared meanwhile: the same rule holds
    for entry in sorted(stage.iterdir()):
        dest = target / entry.name
        if dest.is_dir() and not dest.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{entry.name}.kgkd-old-", dir=target))
            os.rename(dest, old / entry.name)
            os.rename(entry, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if dest.is_symlink() or (dest.exists() and entry.is_dir()):
                dest.unlink()
            os.replace(entry, dest)
    stage.rmdir()


@contextlib.contextmanager
def staged_output_dir(
    target: str | os.PathLike[str], overwrite: bool = False, flag: str = "--overwrite"
) -> Iterator[Path]:
    """Yield a hidden folder next to ``target`` to write outputs into; move them in when complete.

    ``target`` must be new or empty unless ``overwrite``; then only the names written into the
    stage replace their namesakes in ``target`` (the user's other files stay). On any error or
    Ctrl-C the stage and any parent folders this call created are removed: nothing half-written
    is left, and ``target`` is untouched.
    """
    path = check_output_dir(target, overwrite, flag)
    created = _make_parents(path.parent)
    stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.kgkd-", suffix=".partial", dir=path.parent))
    os.chmod(stage, 0o777 & ~_current_umask())
    try:
        yield stage
        _publish(stage, path, overwrite, flag)
    except BaseException as exc:
        shutil.rmtree(stage, ignore_errors=True)
        if not path.exists():
            _remove_empty(created)
        if isinstance(exc, KeyboardInterrupt):
            note_cleanup(f"removed the unfinished output; {path} was not touched")
        raise
