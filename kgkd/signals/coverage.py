"""Label coverage from the graph: which teachers can name any of a domain's labels at all.

A clothing teacher says nothing about digits. Its probabilities, moved into a shared
label space, put all their mass on classes the digit domain never has, so any weight
it gets only steals the argmax. The graph states this without data: a teacher
``predicts`` a label set, a domain ``hasLabelSet`` one, and ``equivalentLabel`` links
say which labels correspond. A teacher *covers* a domain when at least one of its
labels resolves into the domain's label set (:meth:`KnowledgeGraph.label_map`).

The graph-aware weightings give teachers that do not cover a domain zero weight there,
before or after any other rule. When no teacher covers a domain, the weights are left
as they are (there is nothing better to fall back to, and the log says so). Graphs that
state no label sets, or teachers and domains without one, count as covering.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from kgkd.errors import GraphError
from kgkd.utils.logging import get_logger

log = get_logger(__name__)


class LabelCoverage:
    """``mask(domain, teachers)`` → ``[T]`` bool: teacher ``t`` can name a label of ``domain``."""

    def __init__(self, kg: Any) -> None:
        self.kg = kg
        self._pairs: dict[tuple[str, str], bool] = {}
        self._masks: dict[tuple[str, tuple[str, ...]], Tensor] = {}
        self._logged: set[str] = set()

    def _label_set_of(self, kind: str, name: str) -> str | None:
        getter = getattr(self.kg, kind, None)
        if getter is None:
            return None
        try:
            return getattr(getter(name), "label_set", None)
        except GraphError:  # the node is not in the graph: nothing is known, so nothing is excluded
            return None

    def covers(self, teacher: str, domain: str) -> bool:
        """Whether ``teacher``'s labels resolve into ``domain``'s label set (True when either is unknown)."""
        own = self._label_set_of("domain", domain)
        if own is None or self._label_set_of("teacher", teacher) is None:
            return True
        key = (teacher, own)
        if key not in self._pairs:
            try:
                matrix = self.kg.label_map(teacher, own).matrix()
                self._pairs[key] = bool(matrix.sum() > 0)
            except GraphError:  # LabelMapError: none of the teacher's labels has a counterpart
                self._pairs[key] = False
        return self._pairs[key]

    def mask(self, domain: str, teachers: Sequence[str]) -> Tensor:
        """``[T]`` bool, memoised per (domain, teachers)."""
        key = (domain, tuple(teachers))
        if key not in self._masks:
            self._masks[key] = torch.tensor([self.covers(t, domain) for t in teachers], dtype=torch.bool)
        return self._masks[key]

    def restrict(self, domain: str, teachers: Sequence[str], weights: Tensor) -> Tensor:
        """``weights`` ``[N, T]`` with non-covering teachers zeroed and rows renormalised."""
        keep = self.mask(domain, teachers)
        if bool(keep.all()):
            return weights
        if not bool(keep.any()):
            if domain not in self._logged:
                self._logged.add(domain)
                log.info("label coverage: no teacher among %s can name a label of domain '%s' according to "
                         "the graph; weights left unrestricted", list(teachers), domain)
            return weights
        kept = weights * keep.to(weights.dtype)
        total = kept.sum(-1, keepdim=True)
        uniform_kept = keep.to(weights.dtype) / keep.sum()
        return torch.where(total > 0, kept / total.clamp_min(1e-12), uniform_kept.expand_as(weights))
