"""``CachedTeacher``: a stand-in teacher that reads its outputs from a :class:`TeacherCache`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from kgkd.distill.cache.teacher_cache import TeacherCache
from kgkd.errors import CacheError


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
