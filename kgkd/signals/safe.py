"""The default ``kg`` weighting: the graph's best variant when the evidence says so, else (calibrated) uniform.

Candidates — plain uniform, calibrated uniform, the graph prior over its β grid and (with
sample features) the per-sample KG gate over its grid — are scored by inner
leave-one-source-domain-out CV on source labels only (:mod:`kgkd.signals.inner_cv`).
Decision rule, stated once:

1. fewer than two usable inner folds (e.g. one labelled source) → ``uniform``: no evidence;
2. the *base* is ``calibrated_uniform`` if its pooled inner-CV log-loss is below plain
   ``uniform``'s, else ``uniform`` — temperature scaling is judged by the proper score it
   fits, which is far less noisy than accuracy differences of a point;
3. take the graph candidate with the best pooled inner-CV accuracy (ties → the simpler one);
4. keep it only if its gain over the base is reliable: the 5th percentile of a paired
   bootstrap of the gain (samples resampled within each fold, :data:`BOOTSTRAP` draws)
   is > 0 **and** it is at least as accurate as the base in a majority of inner folds;
   otherwise the base.

(Rule 2 replaced "fall back to uniform unless calibration alone passes rule 4" after the
first full signals-suite run, where that fallback left calibrated uniform's gain on text-11
unused; see benchmarks/README.md.)

What was chosen and why is kept in :attr:`SafeKGWeighting.decision` and logged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from kgkd.signals.baselines import WEIGHTINGS
from kgkd.signals.graph_weighting import RuleWeighting, UniformRule, gate_rules, prior_rules
from kgkd.signals.inner_cv import CVResult, WeightRule, cross_validate
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

#: Paired-bootstrap draws for the reliability test.
BOOTSTRAP = 1000
#: Lower quantile of the bootstrapped gain that must be > 0.
QUANTILE = 0.05


def bootstrap_gain_quantile(a: list[Tensor], b: list[Tensor], q: float = QUANTILE, draws: int = BOOTSTRAP,
                            seed: int = 0) -> float:
    """``q``-quantile of the bootstrapped accuracy gain of ``a`` over ``b`` (paired, resampled per fold)."""
    gen = torch.Generator().manual_seed(seed)
    diffs = [(x.float() - y.float()) for x, y in zip(a, b)]
    n = sum(d.numel() for d in diffs)
    totals = torch.zeros(draws)
    for d in diffs:
        idx = torch.randint(0, d.numel(), (draws, d.numel()), generator=gen)
        totals += d[idx].sum(1)
    return float(torch.quantile(totals / n, q))


def reliable_gain(cv: CVResult, name: str, base: str, seed: int) -> tuple[bool, dict[str, Any]]:
    """Whether ``name`` beats ``base`` reliably in ``cv`` (rule 3), with the figures."""
    gain = cv.accuracy(name) - cv.accuracy(base)
    low = bootstrap_gain_quantile(cv.correct[name], cv.correct[base], seed=seed)
    wins = sum(a >= b for a, b in zip(cv.fold_accuracy(name), cv.fold_accuracy(base)))
    ok = gain > 0 and low > 0 and wins * 2 > len(cv.folds)
    return ok, {"gain": round(gain, 4), "gain_q05": round(low, 4), "folds_not_worse": wins, "folds": len(cv.folds)}


@WEIGHTINGS.register("kg")
class SafeKGWeighting(RuleWeighting):
    """Safe default: a CV-chosen graph variant, or the better-calibrated uniform when its gain is not reliable."""

    def candidates(self, with_features: bool) -> dict[str, WeightRule]:
        rules: dict[str, WeightRule] = {"uniform": UniformRule(calibrate=False),
                                        "calibrated_uniform": UniformRule(calibrate=True)}
        rules.update(prior_rules())
        if with_features:
            rules.update(gate_rules())
        return rules

    def choose_rule(self, kg, probs, labels, features):  # type: ignore[override]
        seed = int(self.options.get("seed", 0))
        rules = self.candidates(features is not None and bool(self.options.get("use_gate", True)))
        self.cv: CVResult | None = None
        if len(self.sources) >= 2:
            self.cv = cross_validate(rules, kg, probs, labels, self.sources, self.teachers, self.teacher_domains,
                                     self.similarity, features, seed, memo=self.options.get("cv_memo"))
        if self.cv is None or len(self.cv.folds) < 2:
            self.decision = {"chosen": "uniform", "why": f"{len(self.sources)} labelled source domain(s): "
                             "too few inner folds to measure a gain, so no guess"}
            return self._finish(rules["uniform"])
        cv = self.cv
        base = "calibrated_uniform" if cv.pooled_nll("calibrated_uniform") < cv.pooled_nll("uniform") else "uniform"
        graph = [n for n in rules if n not in ("uniform", "calibrated_uniform")]
        nll = {n: round(cv.pooled_nll(n), 4) for n in ("uniform", "calibrated_uniform")}
        if not graph:
            self.decision = {"chosen": base, "why": "no graph candidates; base by inner-CV log-loss",
                             "cv_nll": nll}
            return self._finish(rules[base])
        best = max(graph, key=lambda n: (round(cv.accuracy(n), 6), -graph.index(n)))
        cv_acc = {n: round(cv.accuracy(n), 4) for n in ("uniform", "calibrated_uniform", best)}
        ok, figures = reliable_gain(cv, best, base, seed)
        if ok:
            self.decision = {"chosen": best, "why": f"reliable inner-CV gain over the base ({base})", **figures,
                             "cv_accuracy": cv_acc, "cv_nll": nll}
            return self._finish(rules[best])
        self.decision = {"chosen": base, "why": f"best graph candidate {best} not reliably better than the base "
                         f"({base}, lower inner-CV log-loss): {figures}", "cv_accuracy": cv_acc, "cv_nll": nll}
        return self._finish(rules[base])

    def _finish(self, rule: WeightRule) -> WeightRule:
        log.info("kg weighting chose %s: %s", self.decision["chosen"],
                 {k: v for k, v in self.decision.items() if k != "chosen"})
        if not rule.calibrate:
            self.calibration = None
            self.context.calibration = None
        return rule

    def describe(self) -> dict[str, Any]:
        return {"method": "kg", **self.rule.describe(), "decision": getattr(self, "decision", {})}

    def to_json(self) -> dict[str, Any]:
        """What was chosen, why, and what rebuilds it: rule, temperatures, teachers and their domains."""
        cal = self.calibration
        return {"rule": self.rule.describe(), "decision": self.decision, "teachers": self.teachers,
                "teacher_domains": self.teacher_domains, "sources": self.sources,
                "temperatures": dict(cal.temperatures) if cal is not None else None}


def domain_weights_from_choice(kg: Any, choice: dict[str, Any], domains: list[str]) -> Tensor | None:
    """``[D, T]`` weights of a saved ``kg`` choice on any graph's ``domains``; None for per-sample rules.

    Uniform rules give ``1/T``; a graph prior is recomputed from ``kg`` — so domains added
    to the Turtle after fitting get weights from their description and links alone.
    """
    from kgkd.signals.graph_weighting import PriorRule, similarity_of
    from kgkd.signals.inner_cv import FoldContext

    rule = choice["rule"]
    teachers = list(choice["teachers"])
    if rule["rule"] == "uniform":
        return torch.full((len(domains), len(teachers)), 1.0 / len(teachers))
    if rule["rule"] != "graph_prior":
        return None
    ctx = FoldContext(list(choice["sources"]), teachers, dict(choice["teacher_domains"]), None,
                      similarity_of(kg, {}))
    prior = PriorRule(float(rule["beta_graph"]), float(rule["beta_text"]))
    dummy = torch.zeros(1, len(teachers), 1)
    return torch.stack([prior.weights(ctx, d, dummy, None)[0] for d in domains])
