"""One pass over a graph's triples into plain dictionaries, for checks that touch every node.

rdflib's in-memory store costs a few microseconds per triple and per lookup (it tracks the
contexts of each triple); a validation that asks for every node's properties one by one
pays that hundreds of thousands of times on a large graph. :class:`TripleIndex` reads each
triple once and answers from dictionaries. It is a snapshot: build it, use it, drop it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from kgkd.graph.gc_pause import paused_gc


class TripleIndex:
    """``predicate -> subject -> [objects]`` of a graph, plus its typed nodes."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        tables: dict[Any, dict[Any, list[Any]]] = defaultdict(lambda: defaultdict(list))
        size = 0
        with paused_gc():
            for s, p, o in graph:
                tables[p][s].append(o)
                size += 1
        #: number of triples (``len(graph)`` walks every triple on some rdflib stores)
        self.size = size
        self.tables: dict[Any, dict[Any, list[Any]]] = {p: dict(t) for p, t in tables.items()}
        instances: dict[Any, list[Any]] = defaultdict(list)
        for s, classes in self.table(RDF.type).items():
            for c in classes:
                instances[c].append(s)
        self._instances = dict(instances)

    def table(self, predicate: Any) -> dict[Any, list[Any]]:
        """``subject -> [objects]`` for one predicate (empty when unused)."""
        return self.tables.get(predicate, {})

    def objects(self, subject: Any, predicate: Any) -> list[Any]:
        return self.tables.get(predicate, {}).get(subject, [])

    def instances(self, cls: Any) -> list[Any]:
        """Subjects typed ``cls`` (``rdf:type`` only, no subclass reasoning)."""
        return self._instances.get(cls, [])

    def classes(self) -> list[Any]:
        """Every object of ``rdf:type`` (the index's own term objects)."""
        return list(self._instances)

    def typed(self, cls: Any) -> list[URIRef]:
        """IRIs typed ``cls``, sorted by IRI (like :func:`kgkd.graph.reader.typed_nodes`)."""
        return sorted({s for s in self.instances(cls) if isinstance(s, URIRef)}, key=str)

    def iris(self) -> set[URIRef]:
        """Every distinct IRI used as subject, predicate or object."""
        found: set[Any] = set()
        for p, table in self.tables.items():
            found.add(p)
            found.update(s for s in table if s.__class__ is URIRef)
            for objects in table.values():
                for o in objects:
                    if o.__class__ is URIRef:
                        found.add(o)
        return found

    def __len__(self) -> int:
        return self.size
