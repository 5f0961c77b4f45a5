"""Small shared helpers: atomic writes, registries, seeding, logging."""

from kgkd.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text, atomic_path
from kgkd.utils.registry import Registry
from kgkd.utils.seed import seed_everything
from kgkd.utils.logging import get_logger

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "Registry",
    "seed_everything",
    "get_logger",
]
