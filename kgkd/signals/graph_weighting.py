"""Weightings built from the graph prior and the domain posterior, registered in ``WEIGHTINGS``.

* ``calibrated_uniform`` — every teacher temperature-scaled on the domains it was not
  trained on, then averaged.
* ``domain_posterior`` — the distribution-weighted rule (Mansour et al. 2008; Cortes et
  al. 2021): ``w_t(x) ∝ Σ_s p(s | x)·[t trained on s]`` with ``p(s | x)`` from a domain
  classifier on the sources' unlabelled samples. The strongest non-graph competitor.
* ``graph_prior`` — ``w(d, t) ∝ exp(β_g·s_relations(d, dom t) + β_t·s_text(d, dom t)
  − β_a·dist_attributes(d, dom t))`` (:mod:`kgkd.signals.similarity`); β = 0 is exactly
  uniform; (β_g, β_t, β_a) from a small grid by inner leave-one-source-domain-out CV on
  source labels.
* ``kg_gate`` — the graph version of the distribution-weighted rule, per sample:
  ``w_t(x) ∝ exp(β·s_G(d, dom t)) · q_t(x)^γ`` with ``q`` the posterior mapped through
  ``trainedOn``; (β_g, β_t, β_a, γ) by the same inner CV.

The graph-aware ones (``graph_prior``, ``kg_gate``, ``kg_adapt``, ``kg``) also read the
graph's label links: a teacher that cannot name any of a domain's labels gets zero
weight there (:mod:`kgkd.signals.coverage`). ``calibrated_uniform`` and
``domain_posterior`` do not read the graph.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from kgkd.errors import SignalError
from kgkd.signals.baselines import WEIGHTINGS, EnsembleWeighting
from kgkd.signals.coverage import LabelCoverage
from kgkd.signals.inner_cv import CVResult, FoldContext, WeightRule, cross_validate
from kgkd.signals.similarity import DomainSimilarity
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

#: β grid of the graph prior (per view); 0 switches a view off.
BETA_GRID: tuple[float, ...] = (0.0, 2.0, 5.0, 10.0)
#: β_a grid of the attribute kernel ``exp(-β_a · mean |Δz|)``: 1 halves a teacher's weight per 0.7
#: standard deviations of attribute difference, 8 is close to "nearest attribute value only".
ATTR_GRID: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0)
#: γ grid of the per-sample gate (how sharply the domain posterior routes).
GAMMA_GRID: tuple[float, ...] = (0.5, 1.0, 2.0)
#: Probability floor added to the mapped posterior, so no teacher is ruled out by one classifier.
POSTERIOR_FLOOR = 1e-3


class UniformRule(WeightRule):
    """``1/T`` (optionally on calibrated teachers)."""

    def __init__(self, calibrate: bool = True) -> None:
        self.calibrate = calibrate

    def weights(self, ctx: FoldContext, domain: str, probs: Tensor, features: Tensor | None) -> Tensor:
        return torch.full(probs.shape[:2], 1.0 / probs.size(1))

    def describe(self) -> dict[str, Any]:
        return {"rule": "uniform", "calibrate": self.calibrate}


def prior_scores(ctx: FoldContext, domain: str, beta_graph: float, beta_text: float,
                 beta_attr: float = 0.0) -> Tensor:
    """``β_g·s_relations + β_t·s_text − β_a·dist_attr`` of ``domain`` to each teacher's best-matching domain."""
    if ctx.similarity is None:
        raise SignalError("the graph prior needs the graph's domain similarity (kg=)")
    scores = torch.zeros(len(ctx.teachers))
    for j, t in enumerate(ctx.teachers):
        own = ctx.teacher_domains.get(t, [])
        if not own:
            continue
        rel = ctx.similarity.row("relations", domain, own)
        txt = ctx.similarity.row("text", domain, own)
        score = beta_graph * rel + beta_text * txt
        if beta_attr:
            score = score - beta_attr * ctx.similarity.row("attribute_distance", domain, own)
        scores[j] = score.max()
    return scores


def mapped_posterior(ctx: FoldContext, features: Tensor) -> Tensor:
    """``q_t(x) = Σ_s p(s | x) · M[s, t]`` with each source's mass shared among its teachers ``[N, T]``."""
    return ctx.mapped_posterior(features, POSTERIOR_FLOOR)


class PriorRule(WeightRule):
    """The graph prior at fixed (β_g, β_t, β_a): one weight row per domain."""

    def __init__(self, beta_graph: float, beta_text: float, beta_attr: float = 0.0) -> None:
        self.beta_graph, self.beta_text, self.beta_attr = beta_graph, beta_text, beta_attr

    def weights(self, ctx: FoldContext, domain: str, probs: Tensor, features: Tensor | None) -> Tensor:
        w = torch.softmax(prior_scores(ctx, domain, self.beta_graph, self.beta_text, self.beta_attr), dim=0)
        return w.expand(probs.size(0), -1).clone()

    def describe(self) -> dict[str, Any]:
        return {"rule": "graph_prior", "beta_graph": self.beta_graph, "beta_text": self.beta_text,
                "beta_attr": self.beta_attr}


class GateRule(WeightRule):
    """Per-sample gate: graph prior × (mapped domain posterior)^γ; β = 0, γ = 1 is the plain DW rule."""

    uses_features = True

    def __init__(self, beta_graph: float, beta_text: float, gamma: float, beta_attr: float = 0.0) -> None:
        self.beta_graph, self.beta_text, self.gamma, self.beta_attr = beta_graph, beta_text, gamma, beta_attr

    def weights(self, ctx: FoldContext, domain: str, probs: Tensor, features: Tensor | None) -> Tensor:
        if features is None:
            raise SignalError(f"the per-sample gate needs features of domain '{domain}' (features=)")
        logits = self.gamma * mapped_posterior(ctx, features).log()
        if self.beta_graph or self.beta_text or self.beta_attr:
            logits = logits + prior_scores(ctx, domain, self.beta_graph, self.beta_text, self.beta_attr)
        return torch.softmax(logits, dim=-1)

    def describe(self) -> dict[str, Any]:
        return {"rule": "kg_gate", "beta_graph": self.beta_graph, "beta_text": self.beta_text,
                "beta_attr": self.beta_attr, "gamma": self.gamma}


def _attr_suffix(beta_attr: float) -> str:
    return f",ba={beta_attr:g}" if beta_attr else ""


def attr_grid(similarity: DomainSimilarity | None) -> tuple[float, ...]:
    """:data:`ATTR_GRID` when the graph states informative numeric attributes, else ``(0,)`` (nothing to try)."""
    has = similarity is not None and bool((similarity.attribute_distance > 0).any())
    return ATTR_GRID if has else (0.0,)


def prior_rules(similarity: DomainSimilarity | None = None) -> dict[str, WeightRule]:
    """Graph-prior rules over the (β_g, β_t, β_a) grid, simplest (β = 0: uniform) first."""
    return {f"prior(bg={bg:g},bt={bt:g}{_attr_suffix(ba)})": PriorRule(bg, bt, ba)
            for ba, bg, bt in itertools.product(attr_grid(similarity), BETA_GRID, BETA_GRID)}


def gate_rules(similarity: DomainSimilarity | None = None) -> dict[str, WeightRule]:
    """Gate rules over the (β_g, β_t, β_a, γ) grid."""
    return {f"gate(bg={bg:g},bt={bt:g}{_attr_suffix(ba)},g={g:g})": GateRule(bg, bt, g, ba)
            for g, ba, bg, bt in itertools.product(GAMMA_GRID, attr_grid(similarity), BETA_GRID, BETA_GRID)}


class RuleWeighting(EnsembleWeighting):
    """A method that applies one :class:`WeightRule` with context fitted on all sources."""

    calibrate_by_default = True
    rule: WeightRule

    def fit(self, kg, probs, labels, source_domains, teachers, target=None, features=None):  # type: ignore[override]
        super().fit(kg, probs, labels, source_domains, teachers, target, features)
        self.sources = [d for d in source_domains if d in labels]
        if not self.sources:
            raise SignalError(f"{type(self).__name__} needs at least one labelled source domain")
        self.similarity = self.options.get("similarity") or similarity_of(kg, self.options)
        self.context = FoldContext(self.sources, self.teachers, self.teacher_domains, self.calibration,
                                   self.similarity, features, int(self.options.get("seed", 0)), LabelCoverage(kg))
        self.rule = self.choose_rule(kg, probs, labels, features)
        self.rule.calibrate = self.calibration is not None
        return self

    def choose_rule(self, kg: Any, probs: Any, labels: Any, features: Any) -> WeightRule:
        raise NotImplementedError

    def sample_weights(self, domain: str, probs: Tensor, features: Tensor | None = None) -> Tensor:
        return self.context.restricted(domain, self.rule.weights(self.context, domain, probs, features))

    def describe(self) -> dict[str, Any]:
        return {"method": type(self).__name__, **self.rule.describe()}


def similarity_of(kg: Any, options: Mapping[str, Any]) -> DomainSimilarity:
    """The graph's :class:`DomainSimilarity` (options ``use_text``, ``embedder``)."""
    return DomainSimilarity.from_kg(kg, options.get("embedder"), bool(options.get("use_text", True)))


@WEIGHTINGS.register("calibrated_uniform")
class CalibratedUniform(RuleWeighting):
    """Uniform average of temperature-scaled teachers."""

    def choose_rule(self, kg, probs, labels, features):  # type: ignore[override]
        return UniformRule(calibrate=True)

    def fit(self, kg, probs, labels, source_domains, teachers, target=None, features=None):  # type: ignore[override]
        self.options.setdefault("similarity", False)  # no graph needed
        EnsembleWeighting.fit(self, kg, probs, labels, source_domains, teachers, target, features)
        self.sources = [d for d in source_domains if d in labels]
        self.context = FoldContext(self.sources, self.teachers, self.teacher_domains, self.calibration, None)
        self.rule = UniformRule(calibrate=self.calibration is not None)
        return self


@WEIGHTINGS.register("domain_posterior")
class DomainPosteriorWeighting(RuleWeighting):
    """The distribution-weighted rule: teachers weighted by ``p(their source | x)``."""

    uses_features = True

    def fit(self, kg, probs, labels, source_domains, teachers, target=None, features=None):  # type: ignore[override]
        if features is None:
            raise SignalError("domain_posterior needs the sources' sample features (features={domain: [N, F]})")
        EnsembleWeighting.fit(self, kg, probs, labels, source_domains, teachers, target, features)
        self.sources = [d for d in source_domains if d in labels]
        self.context = FoldContext(self.sources, self.teachers, self.teacher_domains, self.calibration, None,
                                   features, int(self.options.get("seed", 0)))
        self.rule = GateRule(0.0, 0.0, 1.0)
        return self


class _CVChosen(RuleWeighting):
    """Picks its rule from a grid by inner leave-one-source-domain-out CV accuracy."""

    def grid(self) -> dict[str, WeightRule]:
        raise NotImplementedError

    def choose_rule(self, kg, probs, labels, features):  # type: ignore[override]
        rules = self.grid()
        if len(self.sources) < 2:
            log.info("%s: one labelled source, nothing to cross-validate; β = 0 (uniform)", type(self).__name__)
            self.cv: CVResult | None = None
            return next(iter(rules.values()))
        self.cv = cross_validate(rules, kg, probs, labels, self.sources, self.teachers, self.teacher_domains,
                                 self.similarity, features, int(self.options.get("seed", 0)),
                                 memo=self.options.get("cv_memo"))
        best = max(rules, key=lambda n: (round(self.cv.accuracy(n), 6), -sum(self.cv.nll[n])))
        self.chosen_name = best
        return rules[best]


@WEIGHTINGS.register("graph_prior")
class GraphPriorWeighting(_CVChosen):
    """The graph prior with (β_g, β_t, β_a) chosen by inner CV."""

    def grid(self) -> dict[str, WeightRule]:
        return prior_rules(self.similarity)


@WEIGHTINGS.register("kg_gate")
class KGGateWeighting(_CVChosen):
    """Per-sample KG gate (graph prior × domain posterior) with (β_g, β_t, γ) by inner CV."""

    uses_features = True

    def grid(self) -> dict[str, WeightRule]:
        return gate_rules(self.similarity)

    def fit(self, kg, probs, labels, source_domains, teachers, target=None, features=None):  # type: ignore[override]
        if features is None:
            raise SignalError("kg_gate needs the sources' sample features (features={domain: [N, F]})")
        return super().fit(kg, probs, labels, source_domains, teachers, target, features)


