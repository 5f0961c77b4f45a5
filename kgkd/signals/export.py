"""Make fitted signals visible: heatmap PNG, weights JSON, weights back in the graph as RDF.

The weights are added to the graph as blank nodes that SPARQL can query::

    :teacher_mnist kgkd:teacherWeight [ kgkd:teacher :teacher_mnist ; kgkd:domain :mnist ;
                                        kgkd:weight 0.41 ; kgkd:alignmentWeight 0.37 ] .

(attached to the domain: ``:mnist kgkd:teacherWeight [...]``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from kgkd.signals.fitted import FittedSignals
from kgkd.signals.reliability import ReliabilityTable
from kgkd.utils.io import atomic_path


def weight_triples(kg: Any, fitted: FittedSignals, domains: Sequence[str]) -> list[tuple[Any, Any, Any]]:
    """RDF triples ``:d kgkd:teacherWeight [kgkd:teacher :t ; kgkd:domain :d ; kgkd:weight w]``."""
    from rdflib import BNode, Literal, URIRef
    from rdflib.namespace import XSD

    from kgkd.graph.vocab import KGKD

    w, a = fitted.weights(domains), fitted.alignment(domains)
    d_iri = {n.name: URIRef(n.iri) for n in kg.domains()}
    t_iri = {n.name: URIRef(n.iri) for n in kg.teachers()}
    triples = []
    for i, d in enumerate(domains):
        for j, t in enumerate(fitted.teachers):
            b = BNode()
            triples += [
                (d_iri[d], KGKD.teacherWeight, b),
                (b, KGKD.teacher, t_iri[t]),
                (b, KGKD.domain, d_iri[d]),
                (b, KGKD.weight, Literal(round(float(w[i, j]), 4), datatype=XSD.decimal)),
                (b, KGKD.alignmentWeight, Literal(round(float(a[i, j]), 4), datatype=XSD.decimal)),
            ]
    return triples


def plot_weights(
    path: str | Path,
    weights: Tensor,
    domains: Sequence[str],
    teachers: Sequence[str],
    reliability: ReliabilityTable | None = None,
    source_domains: Sequence[str] = (),
) -> Path:
    """Heatmap of learned weights (domains × teachers) beside measured accuracies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if reliability is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(2.2 + 1.3 * len(teachers) * panels, 1.2 + 0.45 * len(domains)),
                             squeeze=False)
    short = [t.removeprefix("teacher_") for t in teachers]
    rows = [f"{d} (source)" if d in source_domains else d for d in domains]

    def draw(ax: Any, values: list[list[float]], title: str, cmap: str) -> None:
        im = ax.imshow(values, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(short)), short, rotation=30, ha="right")
        ax.set_yticks(range(len(rows)), rows)
        ax.set_title(title, fontsize=10)
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                text = "n/a" if math.isnan(v) else f"{v:.2f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if v > 0.6 else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)

    draw(axes[0][0], weights.tolist(), "learned teacher weight w(d, t)", "Blues")
    if reliability is not None:
        acc = [[reliability.get("accuracy", d, t) if d in reliability.domains else float("nan") for t in teachers]
               for d in domains]
        draw(axes[0][1], acc, "measured accuracy (labelled domains)", "Greens")
        axes[0][1].set_yticklabels([])
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)
    return Path(path)
