"""Where kgkd finds shipped data/graphs and where it keeps caches."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The project checkout root (the folder holding ``data/`` and ``graphs/``)."""
    return Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Folder of the built datasets; ``KGKD_DATA_DIR`` overrides it."""
    return Path(os.environ.get("KGKD_DATA_DIR", repo_root() / "data"))


def graphs_dir() -> Path:
    """Folder of the shipped example graphs."""
    return repo_root() / "graphs"


def cache_dir() -> Path:
    """Folder for teacher caches and trained teacher checkpoints; ``KGKD_CACHE_DIR`` overrides it."""
    return Path(os.environ.get("KGKD_CACHE_DIR", repo_root() / ".kgkd_cache"))
