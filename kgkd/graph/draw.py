"""Draw a knowledge graph as a layered PNG: teachers on top, domains in the middle,
tasks / label sets / labels below; colours per node type, a legend, node names,
and the weights of weighted links."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import networkx as nx

from kgkd.graph.knowledge_graph import KnowledgeGraph
from kgkd.utils.io import atomic_path

#: Fill colour per node type (colour-blind-friendly Okabe-Ito palette).
NODE_COLOURS: dict[str, str] = {
    "teacher": "#E69F00",
    "student": "#CC79A7",
    "domain": "#56B4E9",
    "task": "#009E73",
    "label_set": "#F0E442",
    "label": "#D9D9D9",
    "dataset": "#999999",
}
#: Row (y position) per node type.
ROWS: dict[str, float] = {
    "teacher": 3.4,
    "student": 3.4,
    "domain": 2.0,
    "dataset": 2.0,
    "task": 0.8,
    "label_set": -0.2,
    "label": -1.2,
}
#: Edge colour per relation; others are grey.
EDGE_COLOURS: dict[str, str] = {
    "trainedOn": "#D55E00",
    "predicts": "#E69F00",
    "similarTo": "#0072B2",
    "sharesGenre": "#009E73",
    "sameSource": "#CC79A7",
    "subDomainOf": "#000000",
    "sharesModality": "#56B4E9",
    "equivalentLabel": "#7F7F7F",
    "broaderLabel": "#7F7F7F",
}
#: Structural links drawn thin and pale so that the informative ones stand out.
FAINT_RELATIONS = frozenset({"hasTask", "hasLabelSet", "inLabelSet"})
DASHED_RELATIONS = frozenset({"sameSource", "sharesModality", "equivalentLabel"})
WEIGHTED_DRAWN = frozenset({"similarTo"})
#: Bend of same-row links per relation, so parallel links between two domains stay apart.
ROW_BEND: dict[str, float] = {
    "similarTo": 0.45,
    "sharesGenre": -0.3,
    "sameSource": 0.75,
    "subDomainOf": -0.6,
}
NODE_SIZE = 2300
#: Labels are hidden (summarised on their label set) above this many.
MAX_LABELS_SHOWN = 12


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _domain_order(g: nx.MultiDiGraph, domains: list[str]) -> list[str]:
    """Order domains so that related ones sit side by side (spectral ordering of their links)."""
    h = nx.Graph()
    h.add_nodes_from(domains)
    for u, v, w in g.edges(data="weight"):
        if u in h and v in h and u != v:
            h.add_edge(
                u, v, weight=h.get_edge_data(u, v, {"weight": 0.0})["weight"] + float(w or 1.0)
            )
    order: list[str] = []
    for comp in sorted(nx.connected_components(h), key=lambda c: (-len(c), min(c))):
        nodes = sorted(comp)
        if len(nodes) > 2:
            nodes = list(nx.spectral_ordering(h.subgraph(nodes), weight="weight", seed=0))
        order.extend(nodes)
    return order


def layout(g: nx.MultiDiGraph) -> dict[str, tuple[float, float]]:
    """Layered positions: domains evenly spaced; other rows centred over their neighbours."""
    rows: dict[str, list[str]] = defaultdict(list)
    for n, kind in g.nodes(data="type"):
        rows[kind].append(n)
    pos: dict[str, tuple[float, float]] = {}
    domains = _domain_order(g, rows.get("domain", []))
    for i, n in enumerate(domains):
        pos[n] = (float(i), ROWS["domain"])
    width = max(len(domains), 1)
    for kind in ("teacher", "student", "dataset", "task", "label_set", "label"):
        nodes = rows.get(kind, [])
        wanted = []
        for n in nodes:
            xs = [pos[m][0] for m in nx.all_neighbors(g, n) if m in pos]
            wanted.append((_mean(xs, width / 2), n))
        wanted.sort()
        spacing = 1.0
        last = -1e9
        for x, n in wanted:  # keep at least `spacing` between neighbours in a row
            x = max(x, last + spacing)
            pos[n] = (x, ROWS[kind])
            last = x
    return pos


def _wrap(name: str, width: int = 10) -> str:
    """Break long names at underscores so they fit inside the node circle."""
    if len(name) <= width or "_" not in name:
        return name
    parts, line = [], ""
    for piece in name.split("_"):
        candidate = f"{line}_{piece}" if line else piece
        if line and len(candidate) > width:
            parts.append(line + "_")
            line = piece
        else:
            line = candidate
    parts.append(line)
    return "\n".join(parts)


def _curvature(pos: dict[str, tuple[float, float]], u: str, v: str, rel: str) -> float:
    """Arc bend: same-row links bow out (less the further apart), others nearly straight."""
    (x0, y0), (x1, y1) = pos[u], pos[v]
    if y0 == y1:
        return ROW_BEND.get(rel, 0.3) / max(1.0, abs(x1 - x0)) ** 0.5
    return 0.15 if rel == "predicts" else 0.0


def _collapse_labels(g: nx.MultiDiGraph) -> nx.MultiDiGraph:
    labels = [n for n, kind in g.nodes(data="type") if kind == "label"]
    if len(labels) <= MAX_LABELS_SHOWN:
        return g
    h = g.copy()
    h.remove_nodes_from(labels)
    counts: dict[str, int] = defaultdict(int)
    for n in labels:
        for _, ls, rel in g.out_edges(n, keys=True):
            if rel == "inLabelSet":
                counts[ls] += 1
    for ls, count in counts.items():
        h.nodes[ls]["caption_extra"] = f"({count} labels)"
    return h


def draw_graph(
    kg: KnowledgeGraph, path: str | Path, title: str | None = None, dpi: int = 130
) -> Path:
    """Render ``kg`` to a PNG at ``path`` (written atomically) and return the path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    g = _collapse_labels(kg.to_networkx())
    pos = layout(g)
    xs = [p[0] for p in pos.values()] or [0.0]
    fig_w = max(8.0, 1.9 * (max(xs) - min(xs) + 2))
    fig, ax = plt.subplots(figsize=(fig_w, 8.5))
    kinds = [kind for kind in NODE_COLOURS if any(t == kind for _, t in g.nodes(data="type"))]
    for kind in kinds:
        nodes = [n for n, t in g.nodes(data="type") if t == kind]
        nx.draw_networkx_nodes(
            g,
            pos,
            nodelist=nodes,
            node_color=NODE_COLOURS[kind],
            node_size=NODE_SIZE,
            edgecolors="#333333",
            linewidths=0.8,
            ax=ax,
        )
    captions = {n: _wrap(n) for n in g.nodes}
    for n, extra in g.nodes(data="caption_extra"):
        if extra:
            captions[n] = f"{captions[n]}\n{extra}"
    nx.draw_networkx_labels(g, pos, labels=captions, font_size=7, ax=ax)
    relations = sorted({rel for _, _, rel in g.edges(keys=True)})
    groups: dict[tuple[str, float], list[tuple[str, str]]] = defaultdict(list)
    for u, v, rel in g.edges(keys=True):
        groups[(rel, round(_curvature(pos, u, v, rel), 3))].append((u, v))
    for (rel, rad), edgelist in sorted(groups.items()):
        faint = rel in FAINT_RELATIONS
        conn = f"arc3,rad={rad}"
        nx.draw_networkx_edges(
            g,
            pos,
            edgelist=edgelist,
            edge_color=EDGE_COLOURS.get(rel, "#AAAAAA"),
            style="dashed" if rel in DASHED_RELATIONS else "solid",
            width=0.7 if faint else 1.5,
            alpha=0.35 if faint else 0.95,
            arrows=True,
            arrowsize=10 if faint else 13,
            node_size=NODE_SIZE,
            connectionstyle=conn,
            ax=ax,
        )
        if rel in WEIGHTED_DRAWN:
            nx.draw_networkx_edge_labels(
                g,
                pos,
                edge_labels={(u, v): f"{g.edges[u, v, rel]['weight']:.2g}" for u, v in edgelist},
                font_size=7.5,
                font_color=EDGE_COLOURS[rel],
                connectionstyle=conn,
                ax=ax,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9},
            )
    handles = [
        Patch(facecolor=NODE_COLOURS[k], edgecolor="#333333", label=k.replace("_", " "))
        for k in kinds
    ]
    handles += [
        Line2D(
            [0],
            [0],
            color=EDGE_COLOURS.get(r, "#AAAAAA"),
            lw=2,
            ls="--" if r in DASHED_RELATIONS else "-",
            label=r + (" (weight)" if r == "similarTo" else ""),
        )
        for r in relations
    ]
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False
    )
    ax.set_title(title or Path(kg.source).name, fontsize=11)
    ax.set_axis_off()
    ax.margins(x=0.06, y=0.12)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Path(path)
