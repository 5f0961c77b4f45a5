"""Leave-one-domain-out: does a weighting fitted on some domains transfer to an unseen one?

For each held-out domain, every method is fitted on the *other* labelled domains —
it is handed a labels dict that does not contain the held-out domain at all, so it
cannot read them — and scored on the held-out domain's samples. Only the oracle
(an upper bound) gets the held-out labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kgkd.errors import SignalError
from kgkd.signals.baselines import WEIGHTINGS, stack_probs
from kgkd.signals.fit import teachers_of
from kgkd.signals.mixture import label_nll
from kgkd.signals.reliability import LabelsByDomain, ProbsByDomain
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

#: Methods that take the graph-signal options (encoder, epochs, embedder, ...).
GRAPH_METHODS = frozenset({"kg", "kg_gnn", "kg_gnn_gate", "no_graph", "graph_prior"})
DEFAULT_METHODS: tuple[str, ...] = ("uniform", "calibrated_uniform", "confidence", "best_single", "no_graph", "kg_gnn",
                                     "graph_prior", "kg", "oracle")


@dataclass
class TransferReport:
    """Rows ``{heldout, method, accuracy, nll, weights}`` (weights = mean per teacher)."""

    teachers: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def accuracy(self, heldout: str, method: str) -> float:
        for r in self.rows:
            if r["heldout"] == heldout and r["method"] == method:
                return float(r["accuracy"])
        raise SignalError(f"no result for held-out domain '{heldout}' and method '{method}'")

    def table(self) -> str:
        """A plain-text table: one line per (held-out domain, method)."""
        lines = [f"{'held-out':<16}{'method':<14}{'accuracy':>9}{'nll':>9}  mean weights"]
        for r in self.rows:
            w = " ".join(f"{t}={v:.2f}" for t, v in r["weights"].items())
            lines.append(f"{r['heldout']:<16}{r['method']:<14}{r['accuracy']:>9.4f}{r['nll']:>9.4f}  {w}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"teachers": self.teachers, "rows": self.rows}


def leave_one_domain_out(
    kg: Any,
    probs: ProbsByDomain,
    labels: LabelsByDomain,
    heldout: Sequence[str] | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    teachers: Sequence[str] | None = None,
    **kg_options: Any,
) -> TransferReport:
    """Fit each method on all labelled domains but one, score it on that one.

    ``kg_options`` (encoder, epochs, seed, ...) go to the KG-based methods.
    """
    labelled = [d for d in probs if d in labels]
    targets = list(heldout) if heldout is not None else labelled
    if len(labelled) < 2:
        raise SignalError(f"leave-one-domain-out needs at least 2 labelled domains, got {labelled}")
    names = list(teachers) if teachers is not None else teachers_of(probs, labelled)
    report = TransferReport(names)
    for target in targets:
        if target not in labelled:
            raise SignalError(f"held-out domain '{target}' has no probabilities/labels; choose from {labelled}")
        sources = [d for d in labelled if d != target]
        source_labels = {d: labels[d] for d in sources}  # the held-out labels are not even passed
        p = stack_probs(dict(probs[target]), names)
        y = labels[target].long()
        for name in methods:
            cls = WEIGHTINGS.get(name)
            options = kg_options if name in GRAPH_METHODS else {}
            method = cls(**options)
            given = {**source_labels, target: labels[target]} if cls.uses_target_labels else source_labels
            method.fit(kg, probs, given, sources, names, target=target)
            if cls.uses_features:
                continue  # needs sample features, which a probabilities-only comparison does not have
            mix = method.mixture(target, p)
            w = method.sample_weights(target, method.calibrated(p))
            acc = float((mix.argmax(-1) == y).float().mean())
            nll = float(label_nll(mix, y))
            report.rows.append({"heldout": target, "method": name, "accuracy": round(acc, 6), "nll": round(nll, 6),
                                "weights": {t: round(float(v), 4) for t, v in zip(names, w.mean(0))}})
            log.info("LODO %s / %s: accuracy %.4f", target, name, acc)
    return report
