"""A fast evaluator of the SHACL subset the shipped shapes use (same rules, same messages).

pyshacl needs about 3 ms per focus node (62 s for a 20,000-domain graph on a 2-core machine).
This module reads the *same* shapes graph (``kgkd/graph/shapes/kgkd.ttl``) and evaluates the
SHACL Core features it uses: ``sh:targetClass``, ``sh:property`` with IRI paths, ``sh:minCount``,
``sh:maxCount``, ``sh:in``, ``sh:class``, ``sh:datatype``, ``sh:nodeKind``, ``sh:minInclusive``,
``sh:maxInclusive``, ``sh:pattern``, ``sh:or``, ``sh:node``, ``sh:severity`` and ``sh:message``,
the way pyshacl does (including the results nested under a failing ``sh:node``). Any other
feature raises :class:`UnsupportedShapes` at compile time and the caller runs pyshacl instead;
``tests/graph/test_graph_scale.py`` checks that both give identical results.

Data are read from a :class:`~kgkd.graph.triple_index.TripleIndex` (one pass over the triples).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import RDF, RDFS, SH, XSD

from kgkd.graph.triple_index import TripleIndex

#: (focus node, result path or None, value node or None, message, severity)
Result = tuple[Any, Any, Any, str, URIRef]


class UnsupportedShapes(Exception):
    """The shapes graph uses a SHACL feature this evaluator does not implement."""


#: Shape predicates that carry no constraint.
_IGNORED = {RDF.type, SH.name, SH.description, SH.order, SH.group, RDFS.comment, RDFS.label}
_SUPPORTED = {
    SH.targetClass, SH.property, SH.path, SH.message, SH.severity, SH.minCount, SH.maxCount,
    SH["in"], SH["class"], SH.datatype, SH.nodeKind, SH.minInclusive, SH.maxInclusive,
    SH.pattern, SH["or"], SH.node,
}  # fmt: skip
#: Python types a literal's value must have to match these datatypes (as pyshacl checks them).
_VALUE_TYPES: dict[URIRef, tuple[type, ...]] = {
    XSD.string: (str, bytes),
    RDF.langString: (str, bytes),
    XSD.integer: (int,),
    XSD.float: (float,),
    XSD.decimal: (Decimal,),
    XSD.boolean: (bool,),
    XSD.date: (date,),
    XSD.time: (time,),
    XSD.dateTime: (datetime,),
}
_NUMBERS = (int, float, Decimal)  # exact types: bool (an int subclass) takes rdflib's path
_NODE_KINDS: dict[URIRef, tuple[type, ...]] = {
    SH.BlankNode: (BNode,),
    SH.IRI: (URIRef,),
    SH.Literal: (Literal,),
    SH.BlankNodeOrIRI: (BNode, URIRef),
    SH.BlankNodeOrLiteral: (BNode, Literal),
    SH.IRIOrLiteral: (URIRef, Literal),
}


#: A value-node check: ``(value nodes, data) -> failing value nodes`` (``[None]`` = a count failure).
Check = Callable[[list[Any], "_Data"], list[Any]]


@dataclass
class _Shape:
    """One compiled node or property shape."""

    node: Any
    path: URIRef | None
    severity: URIRef
    #: (message of its results, check)
    checks: list[tuple[str, Check]] = field(default_factory=list)
    properties: list[_Shape] = field(default_factory=list)
    nested: list[tuple[str, _Shape]] = field(default_factory=list)  # sh:node (results reported)
    alternatives: list[tuple[str, list[_Shape]]] = field(default_factory=list)  # sh:or lists


class _Data:
    """Read-only views of the data graph, from a :class:`TripleIndex` (one pass).

    Terms from the shapes graph are equal to, but not the same objects as, the data's; rdflib
    compares such terms in Python, so lookups go through the data's own objects where possible.
    """

    def __init__(self, index: TripleIndex) -> None:
        self.graph = index.graph
        self.index = index
        self._tables: dict[Any, dict[Any, list[Any]]] = {}
        self._classes: dict[URIRef, frozenset[Any]] = {}
        self._types = index.table(RDF.type)
        self._own = {c: c for c in index.classes()}  # the data's own class objects

    def objects(self, subject: Any, predicate: URIRef) -> list[Any]:
        table = self._tables.get(predicate)  # keyed by the shapes' own objects: identity hits
        if table is None:
            table = self._tables[predicate] = self.index.table(predicate)
        return table.get(subject, [])

    def subclasses(self, cls: URIRef) -> frozenset[Any]:
        """``cls`` and every class below it through ``rdfs:subClassOf`` in the data graph."""
        found = self._classes.get(cls)
        if found is None:
            below = set(self.graph.transitive_subjects(RDFS.subClassOf, cls)) | {cls}
            found = frozenset(self._own.get(c, c) for c in below)
            self._classes[cls] = found
        return found

    def instances(self, cls: URIRef) -> set[Any]:
        out: set[Any] = set()
        for c in self.subclasses(cls):
            out.update(self.index.instances(c))
        return out

    def is_instance(self, node: Any, cls: URIRef) -> bool:
        wanted = self.subclasses(cls)
        return any(t in wanted for t in self._types.get(node, ()))


def _datatype_ok(value: Any, datatype: URIRef) -> bool:
    if not isinstance(value, Literal):
        return False
    if value.datatype == datatype:
        if getattr(value, "ill_typed", None) is True:
            return False
        wanted = _VALUE_TYPES.get(datatype)
        return wanted is None or isinstance(value.value, wanted)
    if datatype == RDFS.Literal:
        return True
    if datatype == RDFS.Datatype:
        return value.datatype is not None
    if value.datatype is None and value.language is None and datatype == XSD.string:
        return isinstance(value.value, (str, bytes))
    if datatype == RDF.langString and value.language:
        return isinstance(value.value, (str, bytes))
    return False


def _in_range(value: Any, bound: Literal, lower: bool) -> bool:
    """``value >= bound`` (``lower``) or ``value <= bound``; non-comparable values fail."""
    if not isinstance(value, Literal):
        return False
    a, b = value.value, bound.value
    if type(a) in _NUMBERS and type(b) in _NUMBERS:  # the common case, without rdflib's dispatch
        return a == b or bool(a > b) == lower  # as pyshacl orders them (NaN is "less")
    if isinstance(value.value, str) != isinstance(bound.value, str):
        return False
    try:
        if value.eq(bound):
            return True
        if isinstance(value.value, (datetime, time)):
            return bool(value.value > bound.value) == lower
        return bool(value > bound) == lower
    except (TypeError, NotImplementedError):
        return False


def _class_check(classes: list[URIRef]) -> Check:
    def check(values: list[Any], data: _Data) -> list[Any]:
        return [
            v
            for cls in classes
            for v in values
            if isinstance(v, Literal) or not data.is_instance(v, cls)
        ]

    return check


class _Compiler:
    """Turns shape nodes of a shapes graph into :class:`_Shape` objects (each once)."""

    def __init__(self, shapes: Graph) -> None:
        self.sg = shapes
        self.done: dict[Any, _Shape] = {}

    def qname(self, term: Any) -> str:
        try:
            return self.sg.namespace_manager.normalizeUri(term)
        except Exception:  # noqa: BLE001 - fall back to the raw IRI
            return str(term)

    def one(self, node: Any, predicate: URIRef) -> Any:
        values = list(self.sg.objects(node, predicate))
        if len(values) > 1:
            raise UnsupportedShapes(f"{node} has several {predicate}")
        return values[0] if values else None

    def compile(self, node: Any, reported: bool) -> _Shape:
        """Compile ``node``; ``reported``: its results reach the report (so need a message)."""
        if node in self.done:
            return self.done[node]
        for p in set(self.sg.predicates(node)):
            if p not in _SUPPORTED and p not in _IGNORED:
                raise UnsupportedShapes(f"shape {node} uses {p}")
        path = self.one(node, SH.path)
        if path is not None and not isinstance(path, URIRef):
            raise UnsupportedShapes(f"shape {node} has a complex sh:path")
        literal = self.one(node, SH.message)
        message = str(literal.value) if isinstance(literal, Literal) else None
        shape = _Shape(node=node, path=path, severity=self.one(node, SH.severity) or SH.Violation)
        self.done[node] = shape

        def text(kind: str, generic: str | None = None) -> str:
            if message is not None:
                return message
            if generic is None and reported:
                raise UnsupportedShapes(f"shape {node} reports sh:{kind} without sh:message")
            return generic or ""

        self._add_checks(shape, node, text)
        for other in self.sg.objects(node, SH.node):
            shape.nested.append((text("node"), self.compile(other, reported)))
        for members in self.sg.objects(node, SH["or"]):
            alternatives = [self.compile(m, False) for m in Collection(self.sg, members)]
            shape.alternatives.append((text("or"), alternatives))
        for prop in self.sg.objects(node, SH.property):
            shape.properties.append(self.compile(prop, reported))
        return shape

    def _add_checks(self, shape: _Shape, node: Any, text: Callable[..., str]) -> None:
        sg, add = self.sg, shape.checks.append
        low, high = self.one(node, SH.minCount), self.one(node, SH.maxCount)
        if low is not None:
            add((text("minCount"), lambda vs, d, n=int(low): [None] if len(vs) < n else []))
        if high is not None:
            add((text("maxCount"), lambda vs, d, n=int(high): [None] if len(vs) > n else []))
        for items in sg.objects(node, SH["in"]):
            allowed = frozenset(Collection(sg, items))
            add((text("in"), lambda vs, d, a=allowed: [v for v in vs if v not in a]))
        for dtype in sg.objects(node, SH.datatype):
            add((text("datatype"), lambda vs, d, t=dtype: [v for v in vs if not _datatype_ok(v, t)]))
        for kind in sg.objects(node, SH.nodeKind):
            if kind not in _NODE_KINDS:
                raise UnsupportedShapes(f"sh:nodeKind {kind}")
            generic = f"Value is not of Node Kind {self.qname(kind)}"
            types = _NODE_KINDS[kind]
            add((text("nodeKind", generic), lambda vs, d, t=types: [v for v in vs if not isinstance(v, t)]))
        for bound in sg.objects(node, SH.minInclusive):
            add((text("minInclusive"), lambda vs, d, b=bound: [v for v in vs if not _in_range(v, b, True)]))
        for bound in sg.objects(node, SH.maxInclusive):
            add((text("maxInclusive"), lambda vs, d, b=bound: [v for v in vs if not _in_range(v, b, False)]))
        for pattern in sg.objects(node, SH.pattern):
            regex = re.compile(str(pattern))
            add(
                (
                    text("pattern"),
                    lambda vs, d, r=regex: [v for v in vs if isinstance(v, BNode) or not r.match(str(v))],
                )
            )
        classes = list(sg.objects(node, SH["class"]))
        if classes:
            add((text("class"), _class_check(classes)))


@dataclass
class CompiledShapes:
    """The top-level shapes (those with ``sh:targetClass``) of a shapes graph, ready to run."""

    targets: list[tuple[_Shape, list[URIRef]]]

    def run(self, graph: Graph, index: TripleIndex | None = None) -> list[Result]:
        """Every validation result for ``graph``, as pyshacl would report them
        (``index``: a :class:`TripleIndex` of ``graph`` if the caller has one)."""
        data = _Data(index or TripleIndex(graph))
        results: list[Result] = []
        for shape, classes in self.targets:
            focus_nodes: set[Any] = set()
            for cls in classes:
                focus_nodes |= data.instances(cls)
            for focus in focus_nodes:
                _validate(shape, focus, data, results)
        return results


def _validate(shape: _Shape, focus: Any, data: _Data, results: list[Result] | None) -> bool:
    """Check ``focus`` against ``shape``; append results (unless ``None``); return conformance."""
    values = [focus] if shape.path is None else data.objects(focus, shape.path)
    conforms = True

    def fail(value: Any, message: str) -> None:
        nonlocal conforms
        conforms = False
        if results is not None:
            results.append((focus, shape.path, value, message, shape.severity))

    for message, check in shape.checks:
        for bad in check(values, data):
            fail(bad, message)
    for message, members in shape.alternatives:
        for v in values:
            if not any(_validate(m, v, data, None) for m in members):
                fail(v, message)
    for message, other in shape.nested:
        for v in values:
            nested: list[Result] = []
            if not _validate(other, v, data, nested) or nested:
                fail(v, message)
                if results is not None:
                    results.extend(nested)
    for prop in shape.properties:
        if not _validate(prop, focus, data, results):
            conforms = False
    return conforms


def compile_shapes(shapes: Graph) -> CompiledShapes:
    """Compile every targeted shape of ``shapes``; :class:`UnsupportedShapes` if it cannot."""
    for p in (SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf, SH.target, SH.deactivated):
        if next(shapes.subject_objects(p), None) is not None:
            raise UnsupportedShapes(f"the shapes use {p}")
    if next(shapes.subjects(RDF.type, RDFS.Class), None) is not None:
        raise UnsupportedShapes("a shape is also an rdfs:Class (implicit class target)")
    compiler = _Compiler(shapes)
    targets = []
    for node in sorted(set(shapes.subjects(SH.targetClass, None)), key=str):
        shape = compiler.compile(node, True)
        targets.append((shape, list(shapes.objects(node, SH.targetClass))))
    return CompiledShapes(targets=targets)
