"""Teacher-weighting methods compared in one room, picked by name from :data:`WEIGHTINGS`.

All share one interface (:class:`EnsembleWeighting`): ``fit`` on labelled source
domains, then ``sample_weights(domain, probs)`` gives ``[N, T]`` weights for a
domain's samples (teacher probabilities ``[N, T, C]``; no labels).

* ``uniform`` — plain averaging.
* ``confidence`` — per-sample ``softmax(-entropy / τ)`` (CA-MKD-style, label-free);
  τ is chosen on the source domains.
* ``best_single`` — the teacher with the best mean source accuracy, alone.
* ``oracle`` — the best teacher on the target domain's own labels (upper bound;
  the only method that reads target labels).
* ``kg`` / ``kg_gate`` — the fitted KG-GNN weights (without / with the per-sample gate).
* ``no_graph`` — the same heads over node features only (MLP encoder, no message passing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from kgkd.errors import SignalError
from kgkd.signals.fit import ensemble_nll, fit_signals
from kgkd.signals.fitted import FittedSignals
from kgkd.signals.reliability import LabelsByDomain, ProbsByDomain, measure_reliability
from kgkd.utils.registry import Registry

#: Weighting methods by name: ``WEIGHTINGS.get("kg")(**options)``.
WEIGHTINGS: Registry[type[EnsembleWeighting]] = Registry("teacher weighting")


def stack_probs(by_teacher: dict[str, Tensor], teachers: Sequence[str]) -> Tensor:
    """``{teacher: [N, C]}`` → ``[N, T, C]`` in ``teachers`` order."""
    missing = [t for t in teachers if t not in by_teacher]
    if missing:
        raise SignalError(f"no probabilities for teacher(s) {missing}; collect them for every compared teacher")
    return torch.stack([by_teacher[t].float() for t in teachers], dim=1)


class EnsembleWeighting:
    """Base class: ``fit`` on source domains, then per-sample weights on any domain."""

    #: True only for the oracle: it reads the target domain's labels.
    uses_target_labels: bool = False

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.teachers: list[str] = []

    def fit(self, kg: Any, probs: ProbsByDomain, labels: LabelsByDomain, source_domains: Sequence[str],
            teachers: Sequence[str], target: str | None = None) -> EnsembleWeighting:
        self.teachers = list(teachers)
        return self

    def sample_weights(self, domain: str, probs: Tensor) -> Tensor:
        """Weights ``[N, T]`` (rows sum to 1) for ``probs`` ``[N, T, C]`` of ``domain``."""
        raise NotImplementedError


@WEIGHTINGS.register("uniform")
class UniformEnsemble(EnsembleWeighting):
    """Every teacher ``1/T``."""

    def sample_weights(self, domain: str, probs: Tensor) -> Tensor:
        return torch.full(probs.shape[:2], 1.0 / probs.size(1))


def entropy_weights(probs: Tensor, tau: float) -> Tensor:
    """``softmax(-H(p_t) / τ)`` over teachers, per sample."""
    ent = -(probs.clamp_min(1e-12).log() * probs).sum(-1)
    return torch.softmax(-ent / tau, dim=-1)


@WEIGHTINGS.register("confidence")
class ConfidenceEnsemble(EnsembleWeighting):
    """Per-sample entropy weighting; τ picked from a grid by source-domain NLL."""

    grid: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)

    def fit(self, kg, probs, labels, source_domains, teachers, target=None):  # type: ignore[override]
        super().fit(kg, probs, labels, source_domains, teachers, target)
        def score(tau: float) -> float:
            return sum(ensemble_nll(entropy_weights(p := stack_probs(dict(probs[d]), teachers), tau), p,
                                    labels[d].long()).item() for d in source_domains)
        self.tau = float(self.options.get("tau") or min(self.grid, key=score))
        return self

    def sample_weights(self, domain: str, probs: Tensor) -> Tensor:
        return entropy_weights(probs, self.tau)


class _OneTeacher(EnsembleWeighting):
    chosen: int = 0

    def sample_weights(self, domain: str, probs: Tensor) -> Tensor:
        w = torch.zeros(probs.shape[:2])
        w[:, self.chosen] = 1.0
        return w


@WEIGHTINGS.register("best_single")
class BestSingleTeacher(_OneTeacher):
    """The teacher with the highest mean accuracy over the source domains."""

    def fit(self, kg, probs, labels, source_domains, teachers, target=None):  # type: ignore[override]
        super().fit(kg, probs, labels, source_domains, teachers, target)
        table = measure_reliability({d: probs[d] for d in source_domains}, {d: labels[d] for d in source_domains},
                                    teachers)
        self.chosen = int(torch.nan_to_num(table.accuracy, nan=-1.0).mean(0).argmax())
        return self


@WEIGHTINGS.register("oracle")
class OracleTeacher(_OneTeacher):
    """Upper bound: the best teacher on the target domain's own labels."""

    uses_target_labels = True

    def fit(self, kg, probs, labels, source_domains, teachers, target=None):  # type: ignore[override]
        super().fit(kg, probs, labels, source_domains, teachers, target)
        if target is None or target not in labels:
            raise SignalError("the oracle needs the target domain and its labels (it is an upper bound, not a method)")
        table = measure_reliability({target: probs[target]}, {target: labels[target]}, teachers)
        self.chosen = int(torch.nan_to_num(table.accuracy[0], nan=-1.0).argmax())
        return self


@WEIGHTINGS.register("kg")
class KGEnsemble(EnsembleWeighting):
    """KG-GNN teacher weights per domain (options: encoder, epochs, seed, gate, ...)."""

    default_encoder = "sage"
    default_gate = False
    #: options a subclass pins regardless of what the caller passes (e.g. the ablation's encoder).
    forced: ClassVar[dict[str, Any]] = {}

    def fit(self, kg, probs, labels, source_domains, teachers, target=None):  # type: ignore[override]
        super().fit(kg, probs, labels, source_domains, teachers, target)
        opts = {"encoder": self.default_encoder, "gate": self.default_gate, **self.options, **self.forced}
        self.fitted: FittedSignals = fit_signals(kg, {d: probs[d] for d in source_domains},
                                                 {d: labels[d] for d in source_domains}, source_domains,
                                                 teachers=teachers, **opts)
        return self

    def sample_weights(self, domain: str, probs: Tensor) -> Tensor:
        return self.fitted.sample_weights(domain, probs)


@WEIGHTINGS.register("kg_gate")
class KGGateEnsemble(KGEnsemble):
    """KG-GNN weights refined per sample by the fitted gate."""

    default_gate = True


@WEIGHTINGS.register("no_graph")
class NoGraphEnsemble(KGEnsemble):
    """Ablation: the same heads over node features only (no message passing)."""

    forced: ClassVar[dict[str, Any]] = {"encoder": "mlp"}
