"""Inner leave-one-source-domain-out CV: score weighting rules the way a target will see them.

Each labelled source ``s`` in turn plays the held-out target: its labels are hidden,
its own teachers are left out (a target never has its own teacher), and calibration,
the domain posterior and anything else are fitted on the *other* sources only. A
:class:`WeightRule` is a fixed weighting (no inner fitting of its own) evaluated in
every such fold; :func:`cross_validate` returns per-sample correctness so callers can
compare rules pairwise (bootstrap, per-fold wins), not just by a mean.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from kgkd.errors import SignalError
from kgkd.signals.calibration import TeacherCalibration
from kgkd.signals.coverage import LabelCoverage
from kgkd.signals.mixture import label_nll
from kgkd.signals.posterior import DomainPosterior
from kgkd.signals.similarity import DomainSimilarity


@dataclass
class FoldContext:
    """What a rule may use in one fold: sources, teachers, their domains, calibration, posterior."""

    sources: list[str]
    teachers: list[str]
    teacher_domains: dict[str, list[str]]
    calibration: TeacherCalibration | None
    similarity: DomainSimilarity | None
    features: Mapping[str, Tensor] | None = None
    seed: int = 0
    coverage: LabelCoverage | None = None
    _posterior: DomainPosterior | None = field(default=None, repr=False)
    _predicted: dict[int, Tensor] = field(default_factory=dict, repr=False)
    _mapped: tuple[Tensor, tuple[Any, ...], Tensor] | None = field(default=None, repr=False)

    def restricted(self, domain: str, weights: Tensor) -> Tensor:
        """``weights`` ``[N, T]`` with teachers that cannot name any label of ``domain`` zeroed (graph facts)."""
        return weights if self.coverage is None else self.coverage.restrict(domain, self.teachers, weights)

    def posterior(self) -> DomainPosterior:
        """The domain classifier over this fold's sources (fitted on first use)."""
        if self._posterior is None:
            if self.features is None:
                raise SignalError("this weighting needs sample features of the source domains (features=)")
            self._posterior = DomainPosterior(seed=self.seed).fit(self.features, self.sources)
        return self._posterior

    def predict_sources(self, features: Tensor) -> Tensor:
        """``p(source | x)`` ``[N, S]`` for ``features`` (memoised per tensor: rules share it)."""
        key = id(features)
        if key not in self._predicted:
            self._predicted = {key: self.posterior().predict(features)}  # keep only the latest tensor
            self._mapped = None
        return self._predicted[key]

    def mapped_posterior(self, features: Tensor, floor: float) -> Tensor:
        """``q_t(x) = Σ_s p(s | x) · M[s, t]``, each source's mass shared among its teachers ``[N, T]`` (memoised)."""
        post = self.predict_sources(features)  # [N, S]
        key = (floor, tuple(self.teachers), tuple(self.sources))
        if self._mapped is None or self._mapped[0] is not post or self._mapped[1] != key:
            m = torch.tensor([[float(s in self.teacher_domains.get(t, ())) for t in self.teachers]
                              for s in self.sources])
            m = m / m.sum(1, keepdim=True).clamp_min(1.0)
            self._mapped = (post, key, post @ m + floor)
        return self._mapped[2]


class WeightRule:
    """A fixed weighting: ``weights(ctx, domain, probs, features) -> [N, T]``."""

    calibrate: bool = True
    uses_features: bool = False

    def weights(self, ctx: FoldContext, domain: str, probs: Tensor, features: Tensor | None) -> Tensor:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"rule": type(self).__name__}


def make_context(
    kg: Any,
    probs: Mapping[str, Mapping[str, Tensor]],
    labels: Mapping[str, Tensor],
    sources: Sequence[str],
    teachers: Sequence[str],
    teacher_domains: Mapping[str, Sequence[str]],
    similarity: DomainSimilarity | None,
    features: Mapping[str, Tensor] | None,
    calibrate: bool = True,
    seed: int = 0,
    coverage: LabelCoverage | None = None,
) -> FoldContext:
    """A fold context over ``sources`` and ``teachers`` (calibration fitted on those sources)."""
    cal = (TeacherCalibration.fit(probs, labels, teachers, teacher_domains, [s for s in sources if s in labels])
           if calibrate else None)
    return FoldContext(list(sources), list(teachers), {t: list(teacher_domains.get(t, ())) for t in teachers},
                       cal, similarity, features, seed, coverage)


def stacked(probs: Mapping[str, Tensor], teachers: Sequence[str]) -> Tensor:
    """``{teacher: [N, C]}`` → ``[N, T, C]``."""
    return torch.stack([probs[t].float() for t in teachers], dim=1)


@dataclass
class CVResult:
    """Per-sample correctness of every rule over the inner folds, fold by fold."""

    folds: list[str]
    correct: dict[str, list[Tensor]]  # rule name → one bool tensor per fold
    nll: dict[str, list[float]]

    def accuracy(self, name: str) -> float:
        return float(torch.cat(self.correct[name]).float().mean())

    def pooled_nll(self, name: str) -> float:
        """Mean log-loss of ``name`` over all inner samples (folds weighted by their size)."""
        sizes = [c.numel() for c in self.correct[name]]
        return sum(n * v for n, v in zip(sizes, self.nll[name])) / max(1, sum(sizes))

    def fold_accuracy(self, name: str) -> list[float]:
        return [float(c.float().mean()) for c in self.correct[name]]


def inner_folds(
    sources: Sequence[str], teachers: Sequence[str], teacher_domains: Mapping[str, Sequence[str]]
) -> list[tuple[str, list[str], list[str]]]:
    """``(pseudo-target, other sources, teachers not trained on it)`` for every usable source."""
    out = []
    for s in sources:
        rest = [d for d in sources if d != s]
        kept = [t for t in teachers if s not in teacher_domains.get(t, ())]
        if rest and kept:
            out.append((s, rest, kept))
    return out


def cross_validate(
    rules: Mapping[str, WeightRule],
    kg: Any,
    probs: Mapping[str, Mapping[str, Tensor]],
    labels: Mapping[str, Tensor],
    sources: Sequence[str],
    teachers: Sequence[str],
    teacher_domains: Mapping[str, Sequence[str]],
    similarity: DomainSimilarity | None,
    features: Mapping[str, Tensor] | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    memo: dict[Any, Any] | None = None,
) -> CVResult:
    """Score every rule on every inner fold (see module docstring).

    ``memo``: a dict shared by calls over the same data (same sources, teachers, probabilities
    and seed) — fold contexts and rule scores are then computed once, e.g. when ``graph_prior``,
    ``kg_gate`` and ``kg`` are fitted for the same held-out domain.
    """
    folds = inner_folds(sources, teachers, teacher_domains)
    result = CVResult([f[0] for f in folds], {n: [] for n in rules}, {n: [] for n in rules})
    memo = memo if memo is not None else {}
    if "coverage" not in memo:
        memo["coverage"] = LabelCoverage(kg)
    coverage = memo["coverage"]
    for target, rest, kept in folds:
        if progress is not None:
            progress(target)
        fold_key = (target, tuple(rest), tuple(kept), features is not None)
        y = labels[target].long()
        raw = stacked(probs[target], kept)
        feats = features.get(target) if features is not None else None
        for name, rule in rules.items():
            key = (fold_key, name)
            if key not in memo:
                ctx_key = (fold_key, "context", rule.calibrate)
                if ctx_key not in memo:
                    memo[ctx_key] = make_context(kg, probs, labels, rest, kept, teacher_domains, similarity,
                                                 features, rule.calibrate, seed, coverage)
                ctx = memo[ctx_key]
                p_key = (fold_key, "probs", rule.calibrate)  # calibrated once per fold, shared by the rules
                if p_key not in memo:
                    memo[p_key] = ctx.calibration.apply(raw, kept) if ctx.calibration is not None else raw
                p = memo[p_key]
                w = ctx.restricted(target, rule.weights(ctx, target, p, feats))
                mix = (w.unsqueeze(-1) * p).sum(1)
                memo[key] = (mix.argmax(-1) == y, float(label_nll(mix, y)))
            correct, nll = memo[key]
            result.correct[name].append(correct)
            result.nll[name].append(nll)
    return result
