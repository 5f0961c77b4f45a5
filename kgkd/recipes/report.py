"""What a recipe run leaves behind for people: a per-domain table, plots and the weighted graph.

``metrics.json`` (written by the pipeline) is the single source: every function here
reads the same ``metrics`` mapping, so the table printed by ``kgkd demo``, the bar
chart and the notebooks always agree. Layout of ``metrics["domains"][name]``::

    {"role": "source" | "target", "n": int,
     "student": {"accuracy": float, "macro_f1": float},
     "ensembles": {"kg": {"accuracy": ...}, "uniform": {...}, ...},
     "teachers": {"teacher_imdb": {"accuracy": ...}, ...}}
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt
import numpy as np
from rdflib import BNode, Literal, URIRef
from rdflib.namespace import XSD

from kgkd.graph.vocab import KGKD
from kgkd.utils.io import atomic_path, atomic_write_json

__all__ = [
    "OUTPUT_FILES",
    "TEACHER_WEIGHT",
    "format_table",
    "plot_per_domain",
    "plot_teacher_weights",
    "write_run_outputs",
    "write_weighted_graph",
]

#: Files every run folder holds (besides ``student/``).
OUTPUT_FILES: tuple[str, ...] = (
    "metrics.json", "graph.png", "teacher_weights.png", "per_domain.png", "graph_with_weights.ttl",
)  # fmt: skip

#: Output-only property linking a domain to its fitted weight for one teacher:
#: ``:yelp kgkd:teacherWeight [ kgkd:target :teacher_imdb ; kgkd:weight 0.41 ]``.
TEACHER_WEIGHT = KGKD.teacherWeight

#: Colours: the student stands out, the KG ensemble next to it, baselines in greys/blues.
_COLOURS = {
    "student": "#d62728",
    "kg": "#1f77b4",
    "uniform": "#9e9e9e",
    "confidence": "#bcbd22",
    "best_single": "#8c564b",
    "no_graph": "#17becf",
    "oracle": "#2ca02c",
}


def _pct(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def _acc(entry: Mapping[str, Any] | None) -> float | None:
    if not entry:
        return None
    value = entry.get("accuracy")
    return None if value is None else float(value)


def _role(entry: Mapping[str, Any]) -> str:
    """``source`` / ``target``, plus ``unlabelled`` for a domain without test labels (no accuracy)."""
    role = str(entry.get("role", ""))
    return f"{role}, unlabelled" if entry.get("unlabelled") else role


def format_table(metrics: Mapping[str, Any], weightings: Sequence[str] | None = None) -> str:
    """A plain-text per-domain accuracy table: student vs KG ensemble vs baselines."""
    domains: Mapping[str, Any] = metrics["domains"]
    if weightings is None:
        seen: list[str] = []
        for entry in domains.values():
            for name in entry.get("ensembles", {}):
                if name not in seen:
                    seen.append(name)
        weightings = seen
    header = ["domain", "role", "n", "student"] + [f"ens:{w}" for w in weightings]
    rows = []
    for name, entry in domains.items():
        ens = entry.get("ensembles", {})
        rows.append(
            [name, _role(entry), str(entry.get("n", "")), _pct(_acc(entry.get("student")))]
            + [_pct(_acc(ens.get(w))) for w in weightings]
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    summary = metrics.get("summary")
    if summary:
        lines.append("")
        lines += [f"{k}: {v}" for k, v in summary.items()]
    return "\n".join(lines)


def plot_per_domain(metrics: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Grouped bars per domain: student vs each ensemble weighting (held-out domains hatched)."""
    domains = list(metrics["domains"])
    series: list[str] = ["student"]
    for entry in metrics["domains"].values():
        for name in entry.get("ensembles", {}):
            if name not in series:
                series.append(name)
    values = np.array(
        [
            [
                _acc(metrics["domains"][d].get("student"))
                if s == "student"
                else _acc(metrics["domains"][d].get("ensembles", {}).get(s))
                for d in domains
            ]
            for s in series
        ],
        dtype=float,
    )
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(domains) * max(1, len(series)) / 3 + 2), 4.2))
    width = 0.8 / len(series)
    x = np.arange(len(domains))
    for i, name in enumerate(series):
        label = "student" if name == "student" else f"ensemble ({name.replace('_', ' ')})"
        bars = ax.bar(
            x + (i - (len(series) - 1) / 2) * width,
            np.nan_to_num(values[i]) * 100,
            width,
            label=label,
            color=_COLOURS.get(name),
            edgecolor="black" if name == "student" else "none",
            linewidth=0.6,
        )
        if name == "student":
            for bar, v in zip(bars, values[i]):
                if np.isfinite(v):
                    ax.annotate(f"{100 * v:.0f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                ha="center", va="bottom", fontsize=8)
    roles = [_role(metrics["domains"][d]) for d in domains]
    ax.set_xticks(x, [f"{d}\n({r})" if r else d for d, r in zip(domains, roles)], fontsize=9)
    ax.set_ylim(0, 105)  # bars start at zero: a cut axis makes 2-point gaps look like 20 (exact values: metrics.json)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{metrics.get('name', 'run')}: student vs teacher ensembles per domain")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=min(4, len(series)), frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def plot_teacher_weights(
    matrix: Sequence[Sequence[float]],
    domains: Sequence[str],
    teachers: Sequence[str],
    path: str | os.PathLike[str],
    title: str = "teacher weights fitted from the knowledge graph",
    held_out: Sequence[str] = (),
) -> Path:
    """Heatmap domains × teachers with the weight printed in each cell; held-out rows marked."""
    data = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(1.3 * len(teachers) + 3, 0.55 * len(domains) + 1.8))
    image = ax.imshow(data, cmap="Blues", vmin=0.0, vmax=max(1e-6, float(np.nanmax(data))), aspect="auto")
    ax.set_xticks(range(len(teachers)), [t.replace("teacher_", "") for t in teachers], rotation=30, ha="right")
    ax.set_yticks(range(len(domains)), [f"{d} *" if d in held_out else d for d in domains])
    ax.set_xlabel("teacher")
    ax.set_ylabel("domain" + ("  (* held out: no labels)" if held_out else ""))
    threshold = 0.6 * float(np.nanmax(data)) if data.size else 0.0
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", fontsize=9,
                    color="white" if data[i, j] > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="weight")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def write_weighted_graph(
    kg: Any,
    weights: Mapping[str, Mapping[str, float]],
    path: str | os.PathLike[str],
) -> Path:
    """Serialise the run's graph plus one ``kgkd:teacherWeight`` node per (domain, teacher).

    ``kg`` is a ``KnowledgeGraph``; its rdflib graph is copied so the run's graph object
    is left untouched. The result re-loads with rdflib (and with ``KnowledgeGraph``).
    """
    graph = _rdf_copy(kg)
    iris = {d.name: URIRef(d.iri) for d in kg.domains()}
    iris.update({t.name: URIRef(t.iri) for t in kg.teachers()})
    for domain, row in weights.items():
        if domain not in iris:
            continue
        for teacher, value in row.items():
            if teacher not in iris:
                continue
            node = BNode()
            graph.add((iris[domain], TEACHER_WEIGHT, node))
            graph.add((node, KGKD.target, iris[teacher]))
            graph.add((node, KGKD.weight, Literal(round(float(value), 6), datatype=XSD.double)))
    with atomic_path(path) as tmp:
        graph.serialize(destination=str(tmp), format="turtle")
    return Path(path)


def write_run_outputs(ws: Any, metrics: Mapping[str, Any]) -> dict[str, Path]:
    """Write ``metrics.json``, the three plots and the weighted graph into ``ws.out``."""
    from kgkd.graph.draw import draw_graph

    out: Path = ws.out
    files = {"metrics": atomic_write_json(out / "metrics.json", _jsonable(metrics))}
    files["graph_with_weights"] = write_weighted_graph(ws.kg, metrics["weights"], out / "graph_with_weights.ttl")
    if ws.cfg.output.plots:
        files["graph"] = draw_graph(ws.kg, out / "graph.png", title=f"knowledge graph: {ws.cfg.graph.path}")
        teachers = list(metrics["teachers"])
        domains = list(metrics["weights"])
        matrix = [[metrics["weights"][d][t] for t in teachers] for d in domains]
        files["teacher_weights"] = plot_teacher_weights(
            matrix, domains, teachers, out / "teacher_weights.png", held_out=metrics.get("target_domains", ())
        )
        files["per_domain"] = plot_per_domain(metrics, out / "per_domain.png")
    return files


def _jsonable(obj: Any) -> Any:
    """Plain JSON types (NaN → null) for ``metrics.json``."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _rdf_copy(kg: Any) -> Any:
    from rdflib import Graph

    source = getattr(kg, "graph", None) or getattr(kg, "rdf", None)
    copy = Graph()
    if source is None:  # fall back to the KnowledgeGraph's own serialisation
        copy.parse(data=kg.to_turtle(), format="turtle")
        return copy
    for prefix, ns in source.namespaces():
        copy.bind(prefix, ns, override=True)
    for triple in source:
        copy.add(triple)
    copy.bind("kgkd", KGKD, override=True)
    return copy


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    return Path(path)
