"""Turn the raw RDF triples into typed node dataclasses (the accessors' back end)."""

from __future__ import annotations

from collections.abc import Iterable

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, XSD

from kgkd.graph import vocab as V
from kgkd.graph.nodes import (
    DomainNode,
    LabelNode,
    LabelSetNode,
    Node,
    StudentNode,
    TaskNode,
    TeacherNode,
)

_NUMERIC = {
    XSD.integer,
    XSD.int,
    XSD.long,
    XSD.short,
    XSD.decimal,
    XSD.double,
    XSD.float,
    XSD.nonNegativeInteger,
    XSD.positiveInteger,
    XSD.boolean,
}


def literal_number(value: object) -> float | None:
    """A float for numeric/boolean literals, else ``None`` (strings are not numbers)."""
    if not isinstance(value, Literal) or value.datatype not in _NUMERIC:
        return None
    try:
        py = value.toPython()
        return float(py) if not isinstance(py, Literal) else None
    except (TypeError, ValueError):
        return None


def typed_nodes(graph: Graph, cls: URIRef) -> list[URIRef]:
    """IRIs typed ``cls``, sorted by IRI (the stable order every view uses)."""
    return sorted({s for s in graph.subjects(RDF.type, cls) if isinstance(s, URIRef)}, key=str)


def node_type_of(graph: Graph, iri: object) -> str | None:
    """The kgkd node type name of ``iri`` (first matching class), or ``None``."""
    for cls, name in V.NODE_TYPES.items():
        if (iri, RDF.type, cls) in graph:
            return name
    return None


def _first_text(graph: Graph, iri: URIRef, props: Iterable[URIRef]) -> str:
    for prop in props:
        for value in graph.objects(iri, prop):
            if isinstance(value, Literal):
                return str(value)
    return ""


def _names(graph: Graph, iri: URIRef, prop: URIRef) -> list[str]:
    return sorted(V.local_name(o) for o in graph.objects(iri, prop) if isinstance(o, URIRef))


def _name(graph: Graph, iri: URIRef, prop: URIRef) -> str | None:
    names = _names(graph, iri, prop)
    return names[0] if names else None


def _literals(graph: Graph, iri: URIRef) -> tuple[dict[str, float], dict[str, str]]:
    numbers: dict[str, float] = {}
    texts: dict[str, str] = {}
    for prop, value in graph.predicate_objects(iri):
        if not isinstance(value, Literal) or not str(prop).startswith(str(V.KGKD)):
            continue
        if prop in V.DEDICATED_LITERALS:
            continue
        key = V.local_name(prop)
        number = literal_number(value)
        if number is not None:
            numbers[key] = number
        else:
            texts[key] = str(value)
    return dict(sorted(numbers.items())), dict(sorted(texts.items()))


def _base(graph: Graph, iri: URIRef) -> dict[str, object]:
    name = V.local_name(iri)
    numbers, texts = _literals(graph, iri)
    return {
        "iri": str(iri),
        "name": name,
        "label": _first_text(graph, iri, (RDFS.label,)) or name,
        "description": _first_text(graph, iri, V.DESCRIPTION_PROPERTIES),
        "attributes": numbers,
        "text_attributes": texts,
    }


def read_domain(graph: Graph, iri: URIRef) -> DomainNode:
    modality = _first_text(graph, iri, (V.modality,)) or None
    return DomainNode(
        **_base(graph, iri),  # type: ignore[arg-type]
        modality=modality,
        task=_name(graph, iri, V.hasTask),
        label_set=_name(graph, iri, V.hasLabelSet),
        parents=_names(graph, iri, V.subDomainOf),
    )


def read_task(graph: Graph, iri: URIRef) -> TaskNode:
    return TaskNode(**_base(graph, iri), label_set=_name(graph, iri, V.hasLabelSet))  # type: ignore[arg-type]


def label_index(graph: Graph, iri: URIRef) -> int | None:
    """The ``kgkd:labelIndex`` of a label, or ``None`` when absent / not an integer."""
    for value in graph.objects(iri, V.labelIndex):
        number = literal_number(value)
        if number is not None and float(number).is_integer():
            return int(number)
    return None


def read_label(graph: Graph, iri: URIRef) -> LabelNode:
    equivalent = set(_names(graph, iri, V.equivalentLabel))
    equivalent |= {
        V.local_name(s) for s in graph.subjects(V.equivalentLabel, iri) if isinstance(s, URIRef)
    }
    return LabelNode(
        **_base(graph, iri),  # type: ignore[arg-type]
        label_set=_name(graph, iri, V.inLabelSet),
        index=label_index(graph, iri),
        equivalent=sorted(equivalent),
        broader=_names(graph, iri, V.broaderLabel),
    )


def members(graph: Graph, label_set: URIRef) -> list[URIRef]:
    """Labels of ``label_set`` sorted by ``labelIndex`` (then IRI)."""
    labels = [s for s in graph.subjects(V.inLabelSet, label_set) if isinstance(s, URIRef)]
    return sorted(
        labels,
        key=lambda s: (
            label_index(graph, s) if label_index(graph, s) is not None else 1 << 30,
            str(s),
        ),
    )


def read_label_set(graph: Graph, iri: URIRef) -> LabelSetNode:
    return LabelSetNode(**_base(graph, iri), labels=[V.local_name(m) for m in members(graph, iri)])  # type: ignore[arg-type]


def read_teacher(graph: Graph, iri: URIRef) -> TeacherNode:
    return TeacherNode(
        **_base(graph, iri),  # type: ignore[arg-type]
        trained_on=_names(graph, iri, V.trainedOn),
        label_set=_name(graph, iri, V.predicts),
        architecture=_first_text(graph, iri, (V.architecture,)) or None,
    )


def read_student(graph: Graph, iri: URIRef) -> StudentNode:
    return StudentNode(
        **_base(graph, iri),  # type: ignore[arg-type]
        label_set=_name(graph, iri, V.predicts),
        architecture=_first_text(graph, iri, (V.architecture,)) or None,
    )


def read_node(graph: Graph, iri: URIRef) -> Node:
    """Read any typed node with the reader of its type."""
    kind = node_type_of(graph, iri)
    reader = READERS.get(kind or "", None)
    return reader(graph, iri) if reader else Node(**_base(graph, iri))  # type: ignore[arg-type]


READERS = {
    "domain": read_domain,
    "task": read_task,
    "label": read_label,
    "label_set": read_label_set,
    "teacher": read_teacher,
    "student": read_student,
}


def weighted_links(
    graph: Graph, subject: URIRef, prop: URIRef
) -> list[tuple[URIRef, object, BNode | None]]:
    """``(target, raw weight literal or None, blank node)`` for each link ``subject --prop-->``.

    A plain IRI object is a link of weight 1; a blank node carries ``kgkd:target``
    and ``kgkd:weight``.
    """
    links: list[tuple[URIRef, object, BNode | None]] = []
    for obj in graph.objects(subject, prop):
        if isinstance(obj, URIRef):
            links.append((obj, None, None))
        elif isinstance(obj, BNode):
            for tgt in graph.objects(obj, V.target):
                if isinstance(tgt, URIRef):
                    links.append((tgt, graph.value(obj, V.weight), obj))
    return sorted(links, key=lambda t: str(t[0]))
