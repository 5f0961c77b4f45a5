"""The PyTorch Geometric view: a ``HeteroData`` plus stable name ↔ index maps.

Node types are ``domain``, ``task``, ``label``, ``label_set`` and ``teacher``
(those present in the graph); within a type nodes are ordered by IRI, so the
indices are stable across runs. Every relation becomes one edge type
``(src_type, relation, dst_type)`` plus its reverse ``(dst_type, rev_<relation>,
src_type)`` so that messages flow both ways; every edge type has ``edge_index``
and ``edge_weight``. Node features ``x`` are a constant ``bias`` column, the
numeric kgkd attributes of that node type (missing → 0, each column divided by
its largest absolute value) and, for domains, a one-hot of the modality.
"""

from __future__ import annotations

from collections import defaultdict

import networkx as nx
import torch
from torch_geometric.data import HeteroData

from kgkd.graph import vocab as V
from kgkd.graph.index_maps import IndexMaps
from kgkd.graph.nx_view import RESERVED_ATTRS

#: Numeric literals that identify rather than describe a node (not used as features).
_NOT_FEATURES = frozenset({"labelIndex"})


def _features(
    g: nx.MultiDiGraph, node_type: str, nodes: list[str]
) -> tuple[torch.Tensor, list[str]]:
    keys = sorted(
        {
            k
            for n in nodes
            for k, v in g.nodes[n].items()
            if k not in RESERVED_ATTRS and k not in _NOT_FEATURES and isinstance(v, (int, float))
        }
    )
    columns = ["bias", *keys]
    modalities = list(V.MODALITIES) if node_type == "domain" else []
    columns += [f"modality_{m}" for m in modalities]
    x = torch.zeros(len(nodes), len(columns))
    x[:, 0] = 1.0
    for i, n in enumerate(nodes):
        attrs = g.nodes[n]
        for j, k in enumerate(keys, start=1):
            value = attrs.get(k)
            if isinstance(value, (int, float)):
                x[i, j] = float(value)
        if attrs.get("modality") in modalities:
            x[i, 1 + len(keys) + modalities.index(attrs["modality"])] = 1.0
    scale = x.abs().amax(dim=0).clamp_min(1e-12)
    return x / scale, columns


def to_pyg(g: nx.MultiDiGraph) -> tuple[HeteroData, IndexMaps]:
    """Convert the networkx view into ``(HeteroData, IndexMaps)``."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for n, attrs in g.nodes(data=True):
        if attrs["type"] in V.PYG_NODE_TYPES:
            by_type[attrs["type"]].append(n)
    names: dict[str, list[str]] = {}
    iris: dict[str, list[str]] = {}
    data = HeteroData()
    features: dict[str, list[str]] = {}
    for node_type in V.PYG_NODE_TYPES:
        nodes = sorted(by_type.get(node_type, []), key=lambda n: g.nodes[n]["iri"])
        if not nodes:
            continue
        names[node_type] = nodes
        iris[node_type] = [g.nodes[n]["iri"] for n in nodes]
        data[node_type].x, features[node_type] = _features(g, node_type, nodes)
        data[node_type].num_nodes = len(nodes)
    index = {t: {n: i for i, n in enumerate(ns)} for t, ns in names.items()}
    edges: dict[tuple[str, str, str], list[tuple[int, int, float]]] = defaultdict(list)
    for u, v, attrs in g.edges(data=True):
        tu, tv = g.nodes[u]["type"], g.nodes[v]["type"]
        if tu not in index or tv not in index:
            continue
        edges[(tu, attrs["relation"], tv)].append(
            (index[tu][u], index[tv][v], float(attrs.get("weight", 1.0)))
        )
    for (tu, rel, tv), rows in sorted(edges.items()):
        rows.sort()
        src = torch.tensor([r[0] for r in rows], dtype=torch.long)
        dst = torch.tensor([r[1] for r in rows], dtype=torch.long)
        weight = torch.tensor([r[2] for r in rows], dtype=torch.float)
        data[tu, rel, tv].edge_index = torch.stack([src, dst])
        data[tu, rel, tv].edge_weight = weight
        data[tv, f"rev_{rel}", tu].edge_index = torch.stack([dst, src])
        data[tv, f"rev_{rel}", tu].edge_weight = weight.clone()
    return data, IndexMaps(names=names, iris=iris, feature_names=features)
