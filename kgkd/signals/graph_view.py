"""The graph as the signal models see it: node records, typed edges, pair features.

:class:`SignalGraph` is built from a :class:`~kgkd.graph.KnowledgeGraph` through its
PyG view (``kg.to_pyg()``) plus the typed node views (``kg.domains()``,
``kg.teachers()`` ...). It also computes the *relation-path* features of every
(domain, teacher) pair — facts the graph states that bear directly on whether a
teacher fits a domain (trained on it, on a parent/sub-domain, on a similar domain,
same label set, same modality, textual similarity of the descriptions).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from kgkd.errors import SignalError
from kgkd.signals.features import NodeRecord

EdgeType = tuple[str, str, str]

#: Names of the relation-path features, in column order.
PATH_FEATURES: tuple[str, ...] = (
    "trained_on",
    "trained_on_parent_or_child",
    "similar_weight",
    "related_domain",
    "same_label_set",
    "same_modality",
)


@dataclass
class SignalGraph:
    """Node records per type (in PyG index order), typed edges with weights, domain/teacher facts."""

    records: dict[str, list[NodeRecord]]
    edge_index: dict[EdgeType, Tensor]
    edge_weight: dict[EdgeType, Tensor]
    domain_facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    teacher_facts: dict[str, dict[str, Any]] = field(default_factory=dict)

    # --- lookups -----------------------------------------------------------
    def names(self, node_type: str) -> list[str]:
        return [r.name for r in self.records.get(node_type, [])]

    def index(self, node_type: str, names: Sequence[str], what: str = "node") -> list[int]:
        """Positions of ``names`` among ``node_type`` nodes, or a SignalError naming the missing one."""
        pos = {n: i for i, n in enumerate(self.names(node_type))}
        out = []
        for n in names:
            if n not in pos:
                known = ", ".join(sorted(pos)) or "none"
                raise SignalError(
                    f"{what} '{n}' is not a kgkd:{node_type.title().replace('_', '')} node of the graph "
                    f"(known: {known}); add it to the Turtle file with its relations"
                )
            out.append(pos[n])
        return out

    # --- structure ---------------------------------------------------------
    def reachable_teachers(self, domain: str) -> set[str]:
        """Teachers connected to ``domain`` by any path (edge directions ignored)."""
        adj: dict[tuple[str, int], list[tuple[str, int]]] = {}
        for (s, _, d), ei in self.edge_index.items():
            for a, b in ei.t().tolist():
                adj.setdefault((s, a), []).append((d, b))
                adj.setdefault((d, b), []).append((s, a))
        start = ("domain", self.index("domain", [domain], "domain")[0])
        seen, queue = {start}, deque([start])
        while queue:
            for nxt in adj.get(queue.popleft(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        teachers = self.names("teacher")
        return {teachers[i] for t, i in seen if t == "teacher"}

    def path_features(self, domains: Sequence[str], teachers: Sequence[str], text: Tensor | None = None) -> Tensor:
        """Relation-path features [D, T, len(PATH_FEATURES) + 1]; the last column is text similarity.

        ``text`` [num_domains, E] holds every domain's normalised text embedding (PyG order);
        without it the text-similarity column is 0.
        """
        dom_names = self.names("domain")
        dpos = {n: i for i, n in enumerate(dom_names)}
        sim = self._domain_similarity()
        out = torch.zeros(len(domains), len(teachers), len(PATH_FEATURES) + 1)
        for i, d in enumerate(domains):
            dfact = self.domain_facts.get(d, {})
            for j, t in enumerate(teachers):
                tfact = self.teacher_facts.get(t, {})
                trained = [x for x in tfact.get("trained_on", []) if x in dpos]
                out[i, j, 0] = float(d in trained)
                family = set(dfact.get("parents", [])) | {c for c, f in self.domain_facts.items() if d in f.get("parents", [])}
                out[i, j, 1] = float(any(x in family for x in trained))
                out[i, j, 2] = max((sim.get((d, x), (0.0, False))[0] for x in trained), default=0.0)
                out[i, j, 3] = float(any(sim.get((d, x), (0.0, False))[1] for x in trained))
                dl, tl = dfact.get("label_set"), tfact.get("label_set")
                out[i, j, 4] = 0.5 if dl is None or tl is None else float(dl == tl)
                mods = {self.domain_facts.get(x, {}).get("modality") for x in trained}
                out[i, j, 5] = float(dfact.get("modality") is not None and dfact.get("modality") in mods)
                if text is not None and trained and d in dpos:
                    sims = text[[dpos[x] for x in trained]] @ text[dpos[d]]
                    out[i, j, 6] = sims.max()
        return out

    def _domain_similarity(self) -> dict[tuple[str, str], tuple[float, bool]]:
        """(d1, d2) → (max ``similarTo`` weight, whether any domain–domain relation links them)."""
        names = self.names("domain")
        out: dict[tuple[str, str], tuple[float, bool]] = {}
        for (s, rel, d), ei in self.edge_index.items():
            if s != "domain" or d != "domain":
                continue
            w = self.edge_weight.get((s, rel, d))
            for k, (a, b) in enumerate(ei.t().tolist()):
                weight = float(w[k]) if (w is not None and "similar" in rel.lower()) else 0.0
                for key in ((names[a], names[b]), (names[b], names[a])):
                    old = out.get(key, (0.0, False))
                    out[key] = (max(old[0], weight), True)
        return out


def _node_record(node: Any) -> NodeRecord:
    text = node.label or node.name
    if node.description:
        text = f"{text}. {node.description}"
    return NodeRecord(node.name, text, dict(getattr(node, "attributes", {}) or {}))


def signal_graph_from_kg(kg: Any) -> SignalGraph:
    """Build the :class:`SignalGraph` of a ``KnowledgeGraph`` (uses ``kg.to_pyg()``)."""
    data, maps = kg.to_pyg()
    nodes_by_type: dict[str, dict[str, Any]] = {
        "domain": {n.name: n for n in kg.domains()},
        "teacher": {n.name: n for n in kg.teachers()},
    }
    for node_type, getter in (("label", "labels"), ("label_set", "label_sets"), ("task", "tasks")):
        if hasattr(kg, getter):
            nodes_by_type[node_type] = {n.name: n for n in getattr(kg, getter)()}
    records: dict[str, list[NodeRecord]] = {}
    for node_type in data.node_types:
        names = _ordered_names(maps, node_type, data[node_type].num_nodes)
        known = nodes_by_type.get(node_type, {})
        records[node_type] = [_node_record(known[n]) if n in known else NodeRecord(n, n) for n in names]
    edge_index: dict[EdgeType, Tensor] = {}
    edge_weight: dict[EdgeType, Tensor] = {}
    for et in data.edge_types:
        store = data[et]
        edge_index[tuple(et)] = store.edge_index.long()
        if "edge_weight" in store:
            edge_weight[tuple(et)] = store.edge_weight.float().view(-1)
    domain_facts = {
        d.name: {"parents": list(d.parents), "label_set": d.label_set, "modality": d.modality, "task": d.task}
        for d in kg.domains()
    }
    teacher_facts = {t.name: {"trained_on": list(t.trained_on), "label_set": t.label_set} for t in kg.teachers()}
    return SignalGraph(records, edge_index, edge_weight, domain_facts, teacher_facts)


def _ordered_names(maps: Any, node_type: str, count: int) -> list[str]:
    """Node names of ``node_type`` in PyG index order, read from the graph's IndexMaps."""
    for attr in ("names", "index_to_name", "idx2name"):
        table = getattr(maps, attr, None)
        if isinstance(table, Mapping) and node_type in table:
            return [str(n) for n in table[node_type]]
    for attr in ("index", "name_to_index", "name2idx", "node_index"):
        table = getattr(maps, attr, None)
        if isinstance(table, Mapping) and node_type in table:
            pos = table[node_type]
            return [n for n, _ in sorted(pos.items(), key=lambda kv: kv[1])]
    if isinstance(maps, Mapping) and node_type in maps:
        pos = maps[node_type]
        return [n for n, _ in sorted(pos.items(), key=lambda kv: kv[1])]
    raise SignalError(f"cannot read the {node_type} node names from the graph's PyG index maps ({type(maps).__name__})")
