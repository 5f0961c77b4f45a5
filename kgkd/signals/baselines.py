"""Teacher-weighting methods compared in one room, picked by name from :data:`WEIGHTINGS`.

All share one interface (:class:`EnsembleWeighting`): ``fit`` on labelled source
domains (optionally with unlabelled sample ``features`` per domain), then
``sample_weights(domain, probs, features)`` gives ``[N, T]`` weights for a domain's
samples (teacher probabilities ``[N, T, C]``; no labels) and ``mixture(...)`` the
weighted ensemble ``[N, C]``. Any method can temperature-scale the teachers first
(option ``calibrate``; :mod:`kgkd.signals.calibration`).

Here: ``uniform``, ``confidence`` (per-sample entropy, CA-MKD-style without labels),
``best_single``, ``oracle`` (target labels: an upper bound, never a method) and the
KG-GNN family ``kg_gnn`` / ``kg_gnn_gate`` / ``no_graph``. The graph prior, the
distribution-weighted rule and the safe default ``kg`` live in
:mod:`kgkd.signals.graph_weighting` and :mod:`kgkd.signals.safe`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from kgkd.errors import SignalError
from kgkd.signals.calibration import TeacherCalibration
from kgkd.signals.coverage import LabelCoverage
from kgkd.signals.fit import fit_signals
from kgkd.signals.fitted import FittedSignals
from kgkd.signals.mixture import ensemble_nll
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


def teacher_domains(kg: Any, teachers: Sequence[str]) -> dict[str, list[str]]:
    """``{teacher: domains it was trained on}`` from the graph's ``trainedOn`` (``[]`` if unknown)."""
    facts: dict[str, list[str]] = {}
    if hasattr(kg, "teacher_facts"):
        facts = {t: list(f.get("trained_on", [])) for t, f in kg.teacher_facts.items()}
    elif hasattr(kg, "teachers"):
        facts = {t.name: list(t.trained_on) for t in kg.teachers()}
    return {t: facts.get(t, []) for t in teachers}


class EnsembleWeighting:
    """Base class: ``fit`` on source domains, then per-sample weights on any domain."""

    #: True only for the oracle: it reads the target domain's labels.
    uses_target_labels: bool = False

    #: True for methods that weight samples by their features (``features=`` is then required).
    uses_features: bool = False
    #: Whether teachers are temperature-scaled before weighting unless ``calibrate=`` says otherwise.
    calibrate_by_default: bool = False

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.teachers: list[str] = []
        self.calibration: TeacherCalibration | None = None

    def fit(self, kg: Any, probs: ProbsByDomain, labels: LabelsByDomain, source_domains: Sequence[str],
            teachers: Sequence[str], target: str | None = None,
            features: Mapping[str, Tensor] | None = None) -> EnsembleWeighting:
        """Remember the teachers and, if calibrating, fit their temperatures on the sources."""
        self.teachers = list(teachers)
        self.teacher_domains = teacher_domains(kg, teachers)
        if bool(self.options.get("calibrate", self.calibrate_by_default)):
            self.calibration = TeacherCalibration.fit(probs, labels, teachers, self.teacher_domains,
                                                      [d for d in source_domains if d in labels])
        return self

    def calibrated(self, probs: Tensor) -> Tensor:
        """``probs`` ``[N, T, C]`` after the fitted calibration (unchanged without one)."""
        return probs if self.calibration is None else self.calibration.apply(probs, self.teachers)

    def calibrated_for(self, domain: str, probs: Tensor) -> Tensor:
        """``probs`` of ``domain`` as the method mixes them (methods that calibrate per domain override)."""
        return self.calibrated(probs)

    def calibrated_by_domain(self, probs: ProbsByDomain) -> dict[str, dict[str, Tensor]]:
        """``probs[d][t]`` after calibration, for fitting on calibrated outputs."""
        if self.calibration is None:
            return {d: dict(by_t) for d, by_t in probs.items()}
        return {d: {t: self.calibration.apply(p.unsqueeze(1), [t])[:, 0] for t, p in by_t.items()}
                for d, by_t in probs.items()}

    def sample_weights(self, domain: str, probs: Tensor, features: Tensor | None = None) -> Tensor:
        """Weights ``[N, T]`` (rows sum to 1) for (calibrated) ``probs`` ``[N, T, C]`` of ``domain``."""
        raise NotImplementedError

    def mixture(self, domain: str, probs: Tensor, features: Tensor | None = None) -> Tensor:
        """The weighted ensemble ``Σ_t w_t · p_t`` ``[N, C]`` of raw ``probs`` ``[N, T, C]``."""
        if self.uses_features and features is None:
            raise SignalError(f"{type(self).__name__} weights samples by their features; pass features=")
        cal = self.calibrated_for(domain, probs.float())
        w = self.sample_weights(domain, cal, features)
        return (w.unsqueeze(-1) * cal).sum(1)


@WEIGHTINGS.register("uniform")
class UniformEnsemble(EnsembleWeighting):
    """Every teacher ``1/T``."""

    def sample_weights(self, domain: str, probs: Tensor, features: Tensor | None = None) -> Tensor:
        return torch.full(probs.shape[:2], 1.0 / probs.size(1))


def entropy_weights(probs: Tensor, tau: float) -> Tensor:
    """``softmax(-H(p_t) / τ)`` over teachers, per sample."""
    ent = -(probs.clamp_min(1e-12).log() * probs).sum(-1)
    return torch.softmax(-ent / tau, dim=-1)


@WEIGHTINGS.register("confidence")
class ConfidenceEnsemble(EnsembleWeighting):
    """Per-sample entropy weighting; τ picked from a grid by source-domain NLL."""

    grid: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)

    def fit(self, kg, probs, labels, source_domains, teachers, target=None, features=None):  # type: ignore[override]
        super().fit(kg, probs, labels, source_domains, teachers, target, features)
        probs = self.calibrated_by_domain(probs)
        def score(tau: float) -> float:
            return sum(ensemble_nll(entropy_weights(p := stack_probs(dict(probs[d]), teachers), tau), p,
                                    labels[d].long()).item() for d in source_domains)
        self.tau = float(self.options.get("tau") or min(self.grid, key=score))
        return self

    def sample_weights(self, domain: str, probs: Tensor, features: Tensor | None = None) -> Tensor:
        return entropy_weights(probs, self.tau)


class _OneTeacher(EnsembleWeighting):
    chosen: int = 0

    def sample_weights(self, domain: str, probs: Tensor, features: Tensor | None = None) -> Tensor:
        w = torch.zeros(probs.shape[:2])
        w[:, self.chosen] = 1.0
        return w


@WEIGHTINGS.register("best_single")
class BestSingleTeacher(_OneTeacher):
    """The teacher with the highest mean accuracy over the source domains."""

    def fit(self, kg, probs, labels, source_domains, teachers, target=None, features=None):  # type: ignore[override]
        super().fit(kg, probs, labels, source_domains, teachers, target, features)
        probs = self.calibrated_by_domain(probs)
        table = measure_reliability({d: probs[d] for d in source_domains}, {d: labels[d] for d in source_domains},
                                    teachers)
        self.chosen = int(torch.nan_to_num(table.accuracy, nan=-1.0).mean(0).argmax())
        return self


@WEIGHTINGS.register("oracle")
class OracleTeacher(_OneTeacher):
    """Upper bound: the best teacher on the target domain's own labels."""

    uses_target_labels = True

    def fit(self, kg, probs, labels, source_domains, teachers, target=None, features=None):  # type: ignore[override]
        super().fit(kg, probs, labels, source_domains, teachers, target, features)
        probs = self.calibrated_by_domain(probs)
        if target is None or target not in labels:
            raise SignalError("the oracle needs the target domain and its labels (it is an upper bound, not a method)")
        table = measure_reliability({target: probs[target]}, {target: labels[target]}, teachers)
        self.chosen = int(torch.nan_to_num(table.accuracy[0], nan=-1.0).argmax())
        return self


@WEIGHTINGS.register("kg_gnn")
class KGEnsemble(EnsembleWeighting):
    """KG-GNN teacher weights per domain (options: encoder, epochs, seed, gate, calibrate, ...).

    Fitted the way a target sees it: calibrated teachers, and on each source domain its
    own in-domain teacher is left out (``exclude_own_teacher``, default on).
    """

    calibrate_by_default = True

    default_encoder = "sage"
    default_gate = False
    #: options a subclass pins regardless of what the caller passes (e.g. the ablation's encoder).
    forced: ClassVar[dict[str, Any]] = {}

    def fit(self, kg, probs, labels, source_domains, teachers, target=None, features=None):  # type: ignore[override]
        super().fit(kg, probs, labels, source_domains, teachers, target, features)
        probs = self.calibrated_by_domain(probs)
        opts = {"encoder": self.default_encoder, "gate": self.default_gate, "exclude_own_teacher": True,
                **{k: v for k, v in self.options.items() if k != "calibrate"}, **self.forced}
        self.fitted: FittedSignals = fit_signals(kg, {d: probs[d] for d in source_domains},
                                                 {d: labels[d] for d in source_domains}, source_domains,
                                                 teachers=teachers, **opts)
        self.coverage = LabelCoverage(kg)
        return self

    def sample_weights(self, domain: str, probs: Tensor, features: Tensor | None = None) -> Tensor:
        return self.coverage.restrict(domain, self.teachers, self.fitted.sample_weights(domain, probs))


@WEIGHTINGS.register("kg_gnn_gate")
class KGGateEnsemble(KGEnsemble):
    """KG-GNN weights refined per sample by the fitted gate."""

    default_gate = True


@WEIGHTINGS.register("no_graph")
class NoGraphEnsemble(KGEnsemble):
    """Ablation: the same heads over node features only (no message passing)."""

    forced: ClassVar[dict[str, Any]] = {"encoder": "mlp"}
