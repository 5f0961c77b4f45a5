"""``KnowledgeGraph``: the user's prior knowledge about domains, labels and teachers.

A thin facade over an rdflib ``Graph``: loading (:mod:`.loading`), validation
(:mod:`.validation`), typed accessors (:mod:`.reader`), SPARQL (:mod:`.query`),
label maps (:mod:`.labelmap`) and the networkx / PyG views (:mod:`.nx_view`,
:mod:`.pyg_view`). Nothing here ever touches the network (:mod:`.security`).

>>> kg = KnowledgeGraph.from_file("graphs/sentiment.ttl")
>>> kg.validate()
>>> [t.name for t in kg.teachers()]
['teacher_amazon', 'teacher_imdb', 'teacher_nyt', 'teacher_tweets']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import networkx as nx
from rdflib import Graph, URIRef
from rdflib.term import Node as RDFNode

from kgkd.errors import GraphError
from kgkd.graph import vocab as V
from kgkd.graph.index_maps import IndexMaps
from kgkd.graph.loading import parse_text, read_file
from kgkd.graph.nodes import (
    DomainNode,
    LabelNode,
    LabelSetNode,
    Node,
    StudentNode,
    TaskNode,
    TeacherNode,
)
from kgkd.graph.nx_view import from_networkx, summary_counts, to_networkx
from kgkd.graph.query import QueryResult, run_query
from kgkd.graph.reader import (
    read_domain,
    read_label,
    read_label_set,
    read_student,
    read_task,
    read_teacher,
    typed_nodes,
)
from kgkd.graph.security import check_imports
from kgkd.graph.triple_index import TripleIndex
from kgkd.graph.validation import validate_graph
from kgkd.utils.io import atomic_write_text
from kgkd.utils.suggest import suggestion

if TYPE_CHECKING:  # torch / torch_geometric are imported lazily: they take seconds to import
    from torch_geometric.data import HeteroData

    from kgkd.labels import LabelMap

N = TypeVar("N", bound=Node)
Triple = tuple[RDFNode, RDFNode, RDFNode]


class KnowledgeGraph:
    """A kgkd knowledge graph (RDF underneath) with typed, validated views."""

    def __init__(self, graph: Graph, source: str = "<graph>") -> None:
        self.graph = graph
        #: where the graph came from (file path or ``<string>``), used in error messages.
        self.source = source

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_file(
        cls, path: str | Path, format: str | None = None, *, resolve_imports: bool = False
    ) -> KnowledgeGraph:
        """Load a local RDF file in any format rdflib reads (format guessed from the extension).

        ``owl:imports`` are never followed (a warning is logged); ``resolve_imports=True``
        raises :class:`GraphSecurityError`, as do URL sources.
        """
        graph = read_file(path, format)
        check_imports(graph, str(path), resolve_imports)
        return cls(graph, str(path))

    @classmethod
    def from_string(
        cls,
        text: str,
        format: str = "turtle",
        *,
        source: str = "<string>",
        resolve_imports: bool = False,
    ) -> KnowledgeGraph:
        """Parse RDF text (Turtle by default)."""
        graph = parse_text(text, format, source)
        check_imports(graph, source, resolve_imports)
        return cls(graph, source)

    @classmethod
    def from_networkx(cls, g: nx.Graph, base: str = str(V.KGKD_DATA)) -> KnowledgeGraph:
        """Build a graph from a networkx graph shaped like :meth:`to_networkx` returns."""
        return cls(from_networkx(g, base), "<networkx>")

    # --- validation ---------------------------------------------------------------------
    def validate(self, engine: str = "auto", index: TripleIndex | None = None) -> KnowledgeGraph:
        """Check structural rules and the shipped SHACL shapes; raise GraphValidationError.

        ``engine``: ``"shacl"`` (pyshacl), ``"fast"`` (same shapes and messages, for large
        graphs) or ``"auto"`` (fast from 5,000 triples on). ``index``: a
        :class:`~kgkd.graph.triple_index.TripleIndex` of the graph as it is now, to share one
        pass over the triples with :meth:`summary`. Returns ``self`` so that
        ``KnowledgeGraph.from_file(p).validate()`` chains.
        """
        validate_graph(self.graph, self.source, engine, index)
        return self

    # --- typed accessors ----------------------------------------------------------------
    def _all(self, cls: URIRef, reader: Callable[[Graph, URIRef], N]) -> list[N]:
        return [reader(self.graph, iri) for iri in typed_nodes(self.graph, cls)]

    def domains(self) -> list[DomainNode]:
        """All domains, sorted by IRI."""
        return self._all(V.Domain, read_domain)

    def teachers(self) -> list[TeacherNode]:
        """All teachers, sorted by IRI."""
        return self._all(V.Teacher, read_teacher)

    def tasks(self) -> list[TaskNode]:
        return self._all(V.Task, read_task)

    def labels(self) -> list[LabelNode]:
        return self._all(V.Label, read_label)

    def label_sets(self) -> list[LabelSetNode]:
        return self._all(V.LabelSet, read_label_set)

    def students(self) -> list[StudentNode]:
        return self._all(V.Student, read_student)

    def _find(self, cls: URIRef, kind: str, name: str) -> URIRef:
        iris = typed_nodes(self.graph, cls)
        for iri in iris:
            if V.local_name(iri) == name:
                return iri
        names = [V.local_name(i) for i in iris]
        hint = suggestion(name, names)
        raise GraphError(
            f"{self.source}: no {kind} named '{name}'.{hint} Known {kind}s: {', '.join(names) or '(none)'}"
        )

    def domain(self, name: str) -> DomainNode:
        """The domain called ``name`` (GraphError with suggestions if unknown)."""
        return read_domain(self.graph, self._find(V.Domain, "domain", name))

    def teacher(self, name: str) -> TeacherNode:
        """The teacher called ``name`` (GraphError with suggestions if unknown)."""
        return read_teacher(self.graph, self._find(V.Teacher, "teacher", name))

    def label_set(self, name: str) -> LabelSetNode:
        return read_label_set(self.graph, self._find(V.LabelSet, "label set", name))

    # --- queries and label maps ---------------------------------------------------------
    def query(self, sparql: str) -> QueryResult:
        """SPARQL SELECT → list of dicts, ASK → bool. SERVICE / FROM are refused (GraphSecurityError)."""
        return run_query(self.graph, sparql)

    def label_map(self, teacher_name: str, student_label_set: str) -> LabelMap:
        """Map the labels ``teacher_name`` predicts into ``student_label_set`` via label links."""
        from kgkd.graph.labelmap import build_label_map  # imports torch

        teacher = self._find(V.Teacher, "teacher", teacher_name)
        student = self._find(V.LabelSet, "label set", student_label_set)
        return build_label_map(self.graph, teacher, student)

    # --- views --------------------------------------------------------------------------
    def to_networkx(self) -> nx.MultiDiGraph:
        """Nodes keyed by name with ``type``/``label``/literals; edges with ``relation``/``weight``."""
        return to_networkx(self.graph)

    def to_pyg(self) -> tuple[HeteroData, IndexMaps]:
        """``(HeteroData, IndexMaps)`` with forward and ``rev_`` edge types and ``edge_weight``."""
        from kgkd.graph.pyg_view import to_pyg

        return to_pyg(self.to_networkx())

    # --- editing and saving -------------------------------------------------------------
    def add_statements(self, triples: Iterable[Triple]) -> KnowledgeGraph:
        """Add RDF triples (rdflib terms); call :meth:`validate` afterwards."""
        for triple in triples:
            if len(triple) != 3:
                raise GraphError(
                    f"add_statements expects (subject, predicate, object) triples, got {triple!r}"
                )
            self.graph.add(triple)  # type: ignore[arg-type]
        return self

    #: Alias used in ARCHITECTURE.md.
    add_triples = add_statements

    def merge(self, other: KnowledgeGraph) -> KnowledgeGraph:
        """Add every triple of ``other`` (e.g. a locally downloaded import)."""
        return self.add_statements(other.graph)

    def serialize(self, path: str | Path, format: str = "turtle") -> Path:
        """Write the graph to ``path`` atomically."""
        return atomic_write_text(path, self.graph.serialize(format=format))

    def to_string(self, format: str = "turtle") -> str:
        return self.graph.serialize(format=format)

    def summary(self, index: TripleIndex | None = None) -> dict[str, int]:
        """Counts of nodes per type, relations and triples (those of :meth:`to_networkx`,
        counted straight from the triples, or from ``index``: no node objects)."""
        return summary_counts(self.graph, index)

    def __len__(self) -> int:
        return len(self.graph)

    def __repr__(self) -> str:
        return f"KnowledgeGraph(source={self.source!r}, triples={len(self.graph)})"
