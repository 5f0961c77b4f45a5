"""The summary view of a graph too large to draw node by node.

Domains are grouped (by ``kgkd:genre``, else by ``kgkd:modality``), teachers by
``kgkd:architecture``; the groups are drawn as circles sized by their counts, with the links
between groups aggregated into one line each (width and count). The :data:`TOP_DOMAINS` most
connected domains are drawn individually under their groups. A note on the figure (and a log
line) says what was left out. Everything is read predicate by predicate from the triples, so a
20,000-domain graph is summarised in about a second and drawn on the same fixed canvas.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rdflib import Graph, Literal, URIRef

from kgkd.graph import vocab as V
from kgkd.graph.draw_style import CANVAS, EDGE_COLOURS, NODE_COLOURS, PLOT_WIDTH
from kgkd.graph.gc_pause import paused_gc
from kgkd.graph.knowledge_graph import KnowledgeGraph
from kgkd.graph.nx_view import iter_links, typed_iris
from kgkd.graph.triple_index import TripleIndex
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

#: Domains drawn one by one (the most connected ones).
TOP_DOMAINS = 12
#: At most this many domain groups; smaller ones are merged into "other".
MAX_GROUPS = 10
#: At most this many teacher groups / task and label-set nodes per row.
MAX_ROW = 8


@dataclass
class Digest:
    """What the summary view shows: counts, groups, aggregated links, the top domains."""

    counts: Counter[str]
    group_by: str
    domain_groups: dict[str, int]
    teacher_groups: dict[str, int]
    others: dict[str, tuple[str, int]]  # name -> (kind, count): tasks, label sets (or their groups)
    group_links: Counter[tuple[str, str]] = field(default_factory=Counter)
    inner_links: Counter[str] = field(default_factory=Counter)
    top: list[tuple[str, str, int]] = field(default_factory=list)  # (name, group, degree)
    top_links: list[tuple[str, str, str]] = field(default_factory=list)
    links: int = 0


def _first_text(index: TripleIndex, prop: URIRef, nodes: set[Any]) -> dict[Any, str]:
    out: dict[Any, str] = {}
    for s, objects in index.table(prop).items():
        if s in nodes:
            texts = [o for o in objects if isinstance(o, Literal)]
            if texts:
                out[s] = str(texts[0])
    return out


def _capped(sizes: Counter[str], limit: int) -> dict[str, str]:
    """Map each key to itself, or to ``other (k ...)`` beyond the ``limit - 1`` largest."""
    if len(sizes) <= limit:
        return {k: k for k in sizes}
    keep = [k for k, _ in sizes.most_common(limit - 1)]
    rest = f"other ({len(sizes) - len(keep)} more)"
    return {k: (k if k in keep else rest) for k in sizes}


def digest(graph: Graph, top: int = TOP_DOMAINS) -> Digest:
    """Summarise ``graph`` for the summary view (one pass over its triples)."""
    index = TripleIndex(graph)
    typed = typed_iris(graph, index)
    counts: Counter[str] = Counter(typed.values())
    domains = {n for n, k in typed.items() if k == "domain"}
    teachers = {n for n, k in typed.items() if k == "teacher"}
    genre = _first_text(index, V.genre, domains)
    group_by = "genre" if genre else "modality"
    key = genre if genre else _first_text(index, V.modality, domains)
    raw_group = {d: key.get(d, f"(no {group_by})") for d in domains}
    merge = _capped(Counter(raw_group.values()), MAX_GROUPS)
    group = {d: merge[g] for d, g in raw_group.items()}
    arch = _first_text(index, V.architecture, teachers)
    raw_arch = {t: arch.get(t, "(no architecture)") for t in teachers}
    arch_merge = _capped(Counter(raw_arch.values()), MAX_ROW)
    teacher_group = {t: f"teachers: {arch_merge[a]}" for t, a in raw_arch.items()}

    others: dict[str, tuple[str, int]] = {}
    other_node: dict[Any, str] = {}
    for kind in ("task", "label_set", "student", "dataset"):
        nodes = sorted((n for n, k in typed.items() if k == kind), key=str)
        if len(nodes) <= MAX_ROW // 2:
            for n in nodes:
                other_node[n] = V.local_name(n)
                others[V.local_name(n)] = (kind, 1)
        else:
            name = f"{kind.replace('_', ' ')}s"
            others[name] = (kind, len(nodes))
            other_node.update({n: name for n in nodes})

    degree: Counter[Any] = Counter()
    group_links: Counter[tuple[str, str]] = Counter()
    inner: Counter[str] = Counter()
    domain_links: list[tuple[Any, Any, str]] = []
    links = 0
    for s, t, relation, _w in iter_links(graph, typed, index):
        links += 1
        if s in domains:
            degree[s] += 1
        if t in domains:
            degree[t] += 1
        ends = []
        for n in (s, t):
            ends.append(group.get(n) or teacher_group.get(n) or other_node.get(n))
        if s in domains and t in domains:
            domain_links.append((s, t, relation))
            if group[s] == group[t]:
                inner[group[s]] += 1
                continue
        if ends[0] is None or ends[1] is None or ends[0] == ends[1]:
            continue
        group_links[tuple(sorted(ends))] += 1  # type: ignore[arg-type]
    chosen = sorted(domains, key=lambda d: (-degree[d], str(d)))[:top]
    chosen_set = set(chosen)
    return Digest(
        counts=counts,
        group_by=group_by,
        domain_groups=dict(Counter(group.values()).most_common()),
        teacher_groups=dict(Counter(teacher_group.values()).most_common()),
        others=others,
        group_links=group_links,
        inner_links=inner,
        top=[(V.local_name(d), group[d], degree[d]) for d in chosen],
        top_links=sorted(
            {
                (V.local_name(s), V.local_name(t), r)
                for s, t, r in domain_links
                if s in chosen_set and t in chosen_set
            }
        ),
        links=links,
    )


def left_out_note(d: Digest, nodes: int, budget: int) -> str:
    """One sentence of what the summary view shows and what it leaves out."""
    domains, teachers = d.counts.get("domain", 0), d.counts.get("teacher", 0)
    shown = min(len(d.top), domains)
    return (
        f"summary view: {nodes:,} nodes are more than the {budget} drawn one by one; "
        f"{domains:,} domains shown as {_n(len(d.domain_groups), 'group')} by {d.group_by} and "
        f"{teachers:,} teachers as {_n(len(d.teacher_groups), 'group')} by architecture; "
        f"the {shown} most connected domains drawn individually; left out: {domains - shown:,} "
        f"individual domains, {teachers:,} individual teachers and {d.links:,} individual links "
        "(counted between groups instead)"
    )


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _row(names: list[str], y: float, width: float) -> dict[str, tuple[float, float]]:
    step = width / max(len(names), 1)
    return {n: (step * (i + 0.5), y) for i, n in enumerate(names)}


def summary_figure(kg: KnowledgeGraph, title: str, nodes: int, budget: int) -> Any:
    """The summary view of ``kg`` on the fixed canvas (a matplotlib Figure)."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, Patch

    with paused_gc():
        d = digest(kg.graph)
    note = left_out_note(d, nodes, budget)
    log.info("%s: %s", title, note)
    width = 10.0
    pos: dict[str, tuple[float, float]] = {}
    pos.update(_row(list(d.teacher_groups), 3.4, width))
    pos.update(_row(list(d.domain_groups), 2.0, width))
    pos.update(_row(list(d.others), -0.9, width))
    top_pos = _row([name for name, _, _ in d.top], 0.55, width)

    fig = plt.figure(figsize=CANVAS)
    ax = fig.add_axes((0.01, 0.1, PLOT_WIDTH, 0.82))
    biggest = max([*d.domain_groups.values(), *d.teacher_groups.values(), 1])

    def size(count: int) -> float:  # marker area in points²: 300 .. 4500, by sqrt of the count
        return 300 + 4200 * math.sqrt(count / biggest)

    # aggregated links between groups: straight across rows, arcs above the row within one
    segments, widths = [], []
    arcs = sorted(((a, b, c) for (a, b), c in d.group_links.items() if a in pos and b in pos), key=lambda t: -t[2])
    labelled = 0
    for a, b, count in arcs:
        lw = 0.6 + 1.2 * math.log10(1 + count)
        (xa, ya), (xb, yb) = sorted([pos[a], pos[b]])
        if ya != yb:
            segments.append([pos[a], pos[b]])
            widths.append(lw)
            continue
        rad = min(0.35, 1.6 / (xb - xa))  # arcs stay below the row above (height ~ rad * span / 2)
        ax.add_patch(FancyArrowPatch((xa, ya), (xb, yb), arrowstyle="-", connectionstyle=f"arc3,rad=-{rad}",
                                     lw=lw, color="#7F7F7F", alpha=0.45, zorder=1))  # fmt: skip
        labelled += 1
        if labelled <= 8:  # the biggest counts are written on top of their arcs
            ax.text((xa + xb) / 2, ya + rad * (xb - xa) / 2, f"{count:,}", fontsize=7, color="#555555",
                    ha="center", va="center", zorder=2,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})  # fmt: skip
    ax.add_collection(LineCollection(segments, linewidths=widths, colors="#7F7F7F", alpha=0.35, zorder=1))
    # top domains: tied to their group, and their links among themselves
    ties = [[top_pos[name], pos[g]] for name, g, _ in d.top if g in pos]
    ax.add_collection(LineCollection(ties, linewidths=0.8, colors="#56B4E9", linestyles="dotted", zorder=1))
    for u, v, relation in d.top_links:
        ax.annotate("", xy=top_pos[v], xytext=top_pos[u], zorder=1,
                    arrowprops={"arrowstyle": "->", "color": EDGE_COLOURS.get(relation, "#AAAAAA"),
                                "lw": 1.0, "connectionstyle": "arc3,rad=0.35"})  # fmt: skip

    def nodes_at(names: list[str], colour: str, sizes: list[float]) -> None:
        xy = [pos[n] if n in pos else top_pos[n] for n in names]
        ax.scatter([p[0] for p in xy], [p[1] for p in xy], s=sizes, c=colour,
                   edgecolors="#333333", linewidths=0.8, zorder=3)  # fmt: skip

    nodes_at(list(d.teacher_groups), NODE_COLOURS["teacher"], [size(c) for c in d.teacher_groups.values()])
    nodes_at(list(d.domain_groups), NODE_COLOURS["domain"], [size(c) for c in d.domain_groups.values()])
    for name, (kind, count) in d.others.items():
        nodes_at([name], NODE_COLOURS.get(kind, "#999999"), [size(count) if count > 1 else 700])
    nodes_at([name for name, _, _ in d.top], NODE_COLOURS["domain"], [260] * len(d.top))
    for name, count in d.teacher_groups.items():
        ax.text(*pos[name], f"{name.split(': ', 1)[1]}\n{count:,} teachers", **_caption(8))
    for name, count in d.domain_groups.items():
        inner = d.inner_links.get(name, 0)
        extra = f"\n{inner:,} links inside" if inner else ""
        ax.text(*pos[name], f"{name}\n{count:,} domains{extra}", **_caption(8))
    for name, (kind, count) in d.others.items():
        ax.text(*pos[name], name if count == 1 else f"{name}\n{count:,}", **_caption(7))
    for name, _g, degree in d.top:
        x, y = top_pos[name]
        ax.text(x, y - 0.28, f"{name}\n{degree} links", **_caption(6.5))
    ax.text(0.0, 0.95, f"{len(d.top)} most connected domains (dotted: their group)",
            fontsize=8, color="#333333", transform=ax.transData, va="bottom")  # fmt: skip
    ax.set_xlim(-0.3, width + 0.3)
    ax.set_ylim(-1.6, 4.0)
    ax.set_axis_off()
    ax.set_title(f"{title} (summary view)", fontsize=11)
    fig.text(0.01, 0.015, _wrap_note(note), fontsize=8, va="bottom", color="#333333")
    kinds = [k for k in NODE_COLOURS if d.counts.get(k)]
    handles = [Patch(facecolor=NODE_COLOURS[k], edgecolor="#333333", label=f"{k.replace('_', ' ')}: {d.counts[k]:,}") for k in kinds]  # fmt: skip
    handles.append(Line2D([0], [0], color="#7F7F7F", lw=2, label="links between groups (count)"))
    handles += [Line2D([0], [0], color=EDGE_COLOURS[r], lw=1.5, label=r) for r in sorted({r for _, _, r in d.top_links})]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return fig


def _caption(size: float) -> dict[str, Any]:
    return {"fontsize": size, "ha": "center", "va": "center", "zorder": 4}


def _wrap_note(note: str, width: int = 190) -> str:
    words, lines, line = note.split(" "), [], ""
    for w in words:
        if line and len(line) + len(w) + 1 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    lines.append(line)
    return "\n".join(lines)
