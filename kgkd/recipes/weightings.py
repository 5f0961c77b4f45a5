"""Recipe glue for teacher weightings: check names, fit a ``kgkd.signals.WEIGHTINGS`` method on the sources.

Every method a recipe compares or distils under comes from the one registry
``kgkd.signals.WEIGHTINGS``; the adapter to the engine's ``TeacherWeighting`` lives in
:mod:`kgkd.signals.engine_adapter` (``MethodWeighting``, ``student_space_probs`` and
``FittedKG`` stay importable from here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from kgkd.errors import ConfigError
from kgkd.signals.baselines import WEIGHTINGS, EnsembleWeighting
from kgkd.signals.engine_adapter import FittedSignalsMethod, MethodWeighting, student_space_probs
from kgkd.signals.transfer import GRAPH_METHODS

__all__ = ["FittedKG", "MethodWeighting", "check_method_names", "fit_method", "student_space_probs"]

#: The run's already fitted KG signals as a method (old name of ``FittedSignalsMethod``).
FittedKG = FittedSignalsMethod


def check_method_names(names: Sequence[str], key: str) -> None:
    """Raise a ConfigError (with did-you-mean) for a name that is no weighting method."""
    for name in names:
        try:
            WEIGHTINGS.get(name)
        except ConfigError as exc:
            raise ConfigError(f"{key}: {exc}") from None


def fit_method(
    name: str,
    kg: Any,
    probs: Mapping[str, Mapping[str, Tensor]],
    labels: Mapping[str, Tensor],
    source_domains: Sequence[str],
    teachers: Sequence[str],
    options: Mapping[str, Any],
    target: str | None = None,
) -> EnsembleWeighting:
    """Fit method ``name`` on the source domains' labels (the oracle also gets ``target``'s)."""
    cls = WEIGHTINGS.get(name)
    method = cls(**dict(options)) if name in GRAPH_METHODS else cls()
    given = {d: labels[d] for d in source_domains}
    if cls.uses_target_labels and target is not None:
        given[target] = labels[target]
    return method.fit(kg, probs, given, list(source_domains), list(teachers), target=target)
