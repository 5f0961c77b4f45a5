"""The networkx view of a kgkd graph, and the way back to RDF.

Nodes are keyed by name (IRI local name) and carry ``type``, ``name``, ``iri``,
``label``, ``description`` plus every kgkd literal (``modality``, ``resolution``,
``labelIndex`` ...). Edges are keyed by relation name and carry ``relation`` and
``weight`` (1.0 unless the link is a weighted ``kgkd:similarTo`` blank node).
Only typed kgkd nodes and kgkd relations between them are part of the view.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import networkx as nx
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, RDFS, XSD

from kgkd.errors import GraphValidationError
from kgkd.graph import vocab as V
from kgkd.graph.gc_pause import paused_gc
from kgkd.graph.reader import literal_number, node_type_of, typed_nodes, weighted_links
from kgkd.graph.triple_index import TripleIndex

#: Node attributes that are not kgkd literals.
RESERVED_ATTRS = frozenset({"type", "name", "iri", "label", "description"})


def typed_iris(graph: Graph, index: TripleIndex | None = None) -> dict[URIRef, str]:
    """Every typed kgkd node IRI and its node type (the first of :data:`vocab.NODE_TYPES`)."""
    if index is None:
        return _typed_iris(graph)
    out: dict[URIRef, str] = {}
    for cls, kind in V.NODE_TYPES.items():
        for iri in index.instances(cls):
            if isinstance(iri, URIRef):
                out.setdefault(iri, kind)
    return out


def _tables(graph: Graph, index: TripleIndex | None) -> Iterator[tuple[Any, dict[Any, list[Any]]]]:
    """``(kgkd predicate, subject -> [objects])`` pairs, from ``index`` or predicate by predicate."""
    kgkd = str(V.KGKD)
    if index is not None:
        yield from ((p, t) for p, t in index.tables.items() if str(p).startswith(kgkd))
        return
    for prop in graph.predicates(unique=True):
        if str(prop).startswith(kgkd):
            table: dict[Any, list[Any]] = {}
            for s, o in graph.subject_objects(prop):
                table.setdefault(s, []).append(o)
            yield prop, table


def iter_links(
    graph: Graph, typed: dict[URIRef, str], index: TripleIndex | None = None
) -> Iterator[tuple[URIRef, URIRef, str, Any]]:
    """``(source, target, relation, raw weight or None)`` for every kgkd link between typed nodes,
    read predicate by predicate (one pass over the triples, no per-node lookups)."""
    tables = dict(_tables(graph, index))
    targets = tables.get(V.target, {})
    weights = tables.get(V.weight, {})
    for prop, table in tables.items():
        relation = V.local_name(prop)
        for s, objects in table.items():
            if s not in typed:
                continue
            for o in objects:
                if isinstance(o, URIRef):
                    if o in typed:
                        yield s, o, relation, None
                elif isinstance(o, BNode):
                    for t in targets.get(o, []):
                        if isinstance(t, URIRef) and t in typed:
                            yield s, t, relation, (weights.get(o) or [None])[0]


def summary_counts(graph: Graph, index: TripleIndex | None = None) -> dict[str, int]:
    """Nodes per type (``domains``, ``teachers`` ...), ``relations`` and ``triples``: the counts of
    :func:`to_networkx`'s view, computed from the triples (or ``index``) without building it."""
    with paused_gc():
        typed = typed_iris(graph, index)
        names: dict[str, str] = {}
        name_of = {iri: V.local_name(iri) for iri in typed}
        for iri, kind in sorted(typed.items(), key=lambda kv: str(kv[0])):
            names[name_of[iri]] = kind  # like add_node: a later IRI with the same name wins
        edges = {
            (name_of[s], name_of[t], relation)
            for s, t, relation, _ in iter_links(graph, typed, index)
        }
    counts = {f"{kind}s": 0 for kind in V.NODE_TYPES.values()}
    for kind in names.values():
        counts[f"{kind}s"] += 1
    counts["relations"] = len(edges)
    counts["triples"] = len(graph) if index is None else index.size
    return counts


def _literal_value(value: Literal) -> Any:
    py = value.toPython()
    if isinstance(py, Decimal):
        return float(py)
    return str(value) if isinstance(py, Literal) else py


def _typed_iris(graph: Graph) -> dict[URIRef, str]:
    out: dict[URIRef, str] = {}
    for cls, kind in V.NODE_TYPES.items():
        for iri in typed_nodes(graph, cls):
            out.setdefault(iri, kind)
    return out


def to_networkx(graph: Graph) -> nx.MultiDiGraph:
    """Build the :class:`networkx.MultiDiGraph` view of ``graph``."""
    from kgkd.graph.reader import read_node

    g = nx.MultiDiGraph()
    typed = _typed_iris(graph)
    for iri, kind in sorted(typed.items(), key=lambda kv: str(kv[0])):
        node = read_node(graph, iri)
        attrs: dict[str, Any] = {
            "type": kind,
            "name": node.name,
            "iri": node.iri,
            "label": node.label,
            "description": node.description,
        }
        for prop, value in sorted(graph.predicate_objects(iri), key=lambda po: str(po[0])):
            if isinstance(value, Literal) and str(prop).startswith(str(V.KGKD)):
                attrs.setdefault(V.local_name(prop), _literal_value(value))
        g.add_node(node.name, **attrs)
    for iri in sorted(typed, key=str):
        src = V.local_name(iri)
        for prop in sorted(set(graph.predicates(iri)), key=str):
            if not str(prop).startswith(str(V.KGKD)):
                continue
            relation = V.local_name(prop)
            for tgt, raw, _bnode in weighted_links(graph, iri, prop):
                if tgt not in typed:
                    continue
                number = literal_number(raw) if raw is not None else 1.0
                g.add_edge(
                    src,
                    V.local_name(tgt),
                    key=relation,
                    relation=relation,
                    weight=float(number if number is not None else 1.0),
                )
    return g


def _to_literal(node: str, key: str, value: Any) -> Literal:
    if isinstance(value, bool):
        return Literal(value)
    if isinstance(value, int):
        return Literal(value)
    if isinstance(value, float):
        return Literal(value, datatype=XSD.double)
    if isinstance(value, str):
        return Literal(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return _to_literal(node, key, value.item())
    raise GraphValidationError(
        f"networkx node '{node}' attribute '{key}' has type {type(value).__name__}; "
        "use a str, int, float or bool"
    )


def from_networkx(g: nx.Graph, base: str | Namespace = V.KGKD_DATA) -> Graph:
    """Build RDF from a networkx graph shaped like :func:`to_networkx`'s output.

    Every node needs ``type`` (domain, task, label, label_set, teacher, student,
    dataset); ``iri`` is optional (default ``base`` + node name). Every edge needs
    ``relation`` (a kgkd property local name); only ``similarTo`` may carry a
    ``weight`` other than 1.
    """
    ns = Namespace(str(base))
    graph = Graph()
    for prefix, namespace in V.PREFIXES.items():
        graph.bind(prefix, namespace)
    graph.bind("", ns)
    iris: dict[Any, URIRef] = {}
    for key, attrs in g.nodes(data=True):
        kind = attrs.get("type")
        if kind not in V.CLASS_OF:
            raise GraphValidationError(
                f"networkx node '{key}' has type {kind!r}; set g.nodes['{key}']['type'] to one of "
                f"{', '.join(V.CLASS_OF)}"
            )
        name = str(attrs.get("name", key))
        iri = URIRef(attrs["iri"]) if attrs.get("iri") else ns[name]
        iris[key] = iri
        graph.add((iri, RDF.type, V.CLASS_OF[kind]))
        graph.add((iri, RDFS.label, Literal(attrs.get("label") or name)))
        if attrs.get("description"):
            graph.add((iri, RDFS.comment, Literal(attrs["description"])))
        for attr, value in attrs.items():
            if attr not in RESERVED_ATTRS and value is not None:
                graph.add((iri, V.KGKD[attr], _to_literal(str(key), attr, value)))
    edges = g.edges(data=True, keys=False) if not g.is_multigraph() else g.edges(data=True)
    for u, v, attrs in edges:
        relation = attrs.get("relation")
        if not relation:
            raise GraphValidationError(
                f"networkx edge '{u}' → '{v}' has no 'relation' attribute; set it to a kgkd property "
                "name such as 'trainedOn' or 'similarTo'"
            )
        prop = V.KGKD[relation]
        weight = float(attrs.get("weight", 1.0))
        if prop in V.WEIGHTED_RELATIONS:
            link = BNode()
            graph.add((iris[u], prop, link))
            graph.add((link, V.target, iris[v]))
            graph.add((link, V.weight, Literal(weight, datatype=XSD.double)))
        elif weight != 1.0:
            raise GraphValidationError(
                f"networkx edge '{u}' → '{v}' ({relation}) has weight {weight:g}, but only similarTo "
                "links carry weights; drop the weight or use relation 'similarTo'"
            )
        else:
            graph.add((iris[u], prop, iris[v]))
    return graph


__all__ = [
    "from_networkx",
    "iter_links",
    "node_type_of",
    "summary_counts",
    "to_networkx",
    "typed_iris",
]
