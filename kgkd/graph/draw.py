"""Draw a knowledge graph as a layered PNG: teachers on top, domains in the middle,
tasks / label sets / labels below; colours per node type, a legend, node names,
and the weights of weighted links.

The canvas is fixed (:data:`CANVAS` inches at ``dpi``): nodes and fonts shrink to fit
instead of the figure growing. Above :data:`NODE_BUDGET` nodes one picture of every node
would be unreadable, so :mod:`kgkd.graph.draw_summary` draws a summary view instead.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import networkx as nx

from kgkd.graph import vocab as V
from kgkd.graph.draw_style import CANVAS, EDGE_COLOURS, NODE_COLOURS, PLOT_WIDTH
from kgkd.graph.draw_summary import summary_figure
from kgkd.graph.knowledge_graph import KnowledgeGraph
from kgkd.graph.nx_view import typed_iris
from kgkd.utils.io import atomic_path
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

#: Graphs with more drawn nodes than this get the summary view.
NODE_BUDGET = 80

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


def drawn_node_count(kg: KnowledgeGraph) -> int:
    """How many nodes the detailed view would draw (labels collapse above MAX_LABELS_SHOWN)."""
    kinds = list(typed_iris(kg.graph).values())
    labels = kinds.count(V.NODE_TYPES[V.Label])
    return len(kinds) - (labels if labels > MAX_LABELS_SHOWN else 0)


def draw_graph(
    kg: KnowledgeGraph,
    path: str | Path,
    title: str | None = None,
    dpi: int = 130,
    max_nodes: int = NODE_BUDGET,
) -> Path:
    """Render ``kg`` to a PNG of :data:`CANVAS` inches at ``path`` (written atomically).

    Up to ``max_nodes`` drawn nodes: every node and link; above: the summary view of
    :mod:`kgkd.graph.draw_summary` (groups, the most connected domains, a note of what
    was left out, also logged).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    nodes = drawn_node_count(kg)
    if nodes > max_nodes:
        fig = summary_figure(kg, title or Path(kg.source).name, nodes, max_nodes)
    else:
        fig = _detailed_figure(kg, title or Path(kg.source).name)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
    return Path(path)


def _scale(pos: dict[str, tuple[float, float]]) -> float:
    """1.0 when a row slot is at least as wide as a full-size node, smaller when nodes crowd."""
    xs = [p[0] for p in pos.values()] or [0.0]
    slot_inches = CANVAS[0] * PLOT_WIDTH / (max(xs) - min(xs) + 2)
    return min(1.0, slot_inches / 1.05)


def _detailed_figure(kg: KnowledgeGraph, title: str) -> Any:
    """Every node and link of ``kg`` on the fixed canvas, sizes scaled to fit."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    g = _collapse_labels(kg.to_networkx())
    pos = layout(g)
    scale = _scale(pos)
    node_size = NODE_SIZE * scale**2
    font = max(3.0, 7.0 * scale)
    fig = plt.figure(figsize=CANVAS)
    ax = fig.add_axes((0.01, 0.02, PLOT_WIDTH, 0.9))
    kinds = [kind for kind in NODE_COLOURS if any(t == kind for _, t in g.nodes(data="type"))]
    for kind in kinds:
        nodes = [n for n, t in g.nodes(data="type") if t == kind]
        nx.draw_networkx_nodes(
            g,
            pos,
            nodelist=nodes,
            node_color=NODE_COLOURS[kind],
            node_size=node_size,
            edgecolors="#333333",
            linewidths=0.8,
            ax=ax,
        )
    captions = {n: _wrap(n) for n in g.nodes}
    for n, extra in g.nodes(data="caption_extra"):
        if extra:
            captions[n] = f"{captions[n]}\n{extra}"
    nx.draw_networkx_labels(g, pos, labels=captions, font_size=font, ax=ax)
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
            arrowsize=(10 if faint else 13) * scale,
            node_size=node_size,
            connectionstyle=conn,
            ax=ax,
        )
        if rel in WEIGHTED_DRAWN:
            nx.draw_networkx_edge_labels(
                g,
                pos,
                edge_labels={(u, v): f"{g.edges[u, v, rel]['weight']:.2g}" for u, v in edgelist},
                font_size=font + 0.5,
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
    ax.set_title(title, fontsize=11)
    ax.set_axis_off()
    ax.margins(x=0.06, y=0.12)
    return fig
