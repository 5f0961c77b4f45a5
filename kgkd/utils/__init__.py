"""Small shared helpers: atomic writes, registries, seeding, logging.

Names are resolved lazily so that importing :mod:`kgkd.utils.logging` (as the CLI
does at start-up) does not import torch through :mod:`kgkd.utils.seed`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "atomic_path": "kgkd.utils.io",
    "atomic_write_bytes": "kgkd.utils.io",
    "atomic_write_json": "kgkd.utils.io",
    "atomic_write_text": "kgkd.utils.io",
    "Registry": "kgkd.utils.registry",
    "seed_everything": "kgkd.utils.seed",
    "get_logger": "kgkd.utils.logging",
}

__all__ = [
    "Registry",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "get_logger",
    "seed_everything",
]


def __getattr__(name: str) -> Any:
    """Import the helper's module on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kgkd.utils' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
