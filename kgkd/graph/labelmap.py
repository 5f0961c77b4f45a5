"""Resolve a teacher's label set into a student's label set through the graph's label links.

A teacher label maps to the student label it *is* (same node), is
``kgkd:equivalentLabel`` to (either direction), or — failing that — to the
nearest label reached through ``kgkd:broaderLabel`` (fine → coarse, many-to-one),
walking equivalences and broader links breadth-first.
"""

from __future__ import annotations

from collections import deque

from rdflib import Graph, URIRef

from kgkd.errors import LabelMapError
from kgkd.graph import vocab as V
from kgkd.graph.reader import members
from kgkd.labels import LabelMap
from kgkd.utils.logging import get_logger

log = get_logger(__name__)


def _neighbours(graph: Graph, label: URIRef) -> list[tuple[URIRef, int]]:
    """Next labels with the cost of the step (equivalence 0, broader 1)."""
    out: list[tuple[URIRef, int]] = []
    for other in graph.objects(label, V.equivalentLabel):
        out.append((other, 0))  # type: ignore[arg-type]
    for other in graph.subjects(V.equivalentLabel, label):
        out.append((other, 0))  # type: ignore[arg-type]
    for other in graph.objects(label, V.broaderLabel):
        out.append((other, 1))  # type: ignore[arg-type]
    return [(o, c) for o, c in out if isinstance(o, URIRef)]


def resolve_label(graph: Graph, label: URIRef, student: dict[URIRef, int], teacher: str) -> int:
    """Student index of ``label`` (-1 when unreachable); ambiguity is an error."""
    best: dict[URIRef, int] = {label: 0}
    queue: deque[URIRef] = deque([label])
    while queue:  # 0-1 BFS: equivalence steps are free, broader steps cost one
        node = queue.popleft()
        for nxt, cost in _neighbours(graph, node):
            dist = best[node] + cost
            if dist < best.get(nxt, 1 << 30):
                best[nxt] = dist
                (queue.appendleft if cost == 0 else queue.append)(nxt)
    hits = [(d, n) for n, d in best.items() if n in student]
    if not hits:
        return -1
    nearest = min(d for d, _ in hits)
    targets = sorted({student[n] for d, n in hits if d == nearest})
    if len(targets) > 1:
        names = sorted(V.local_name(n) for d, n in hits if d == nearest)
        raise LabelMapError(
            f"teacher '{teacher}': label '{V.local_name(label)}' is linked to several student labels "
            f"({', '.join(names)}); keep one kgkd:equivalentLabel / kgkd:broaderLabel link"
        )
    return targets[0]


def build_label_map(graph: Graph, teacher_iri: URIRef, student_set: URIRef) -> LabelMap:
    """The :class:`~kgkd.labels.LabelMap` from the teacher's predicted label set into ``student_set``."""
    teacher = V.local_name(teacher_iri)
    teacher_set = graph.value(teacher_iri, V.predicts)
    if not isinstance(teacher_set, URIRef):
        raise LabelMapError(
            f"teacher '{teacher}' has no kgkd:predicts; add `kgkd:predicts :<label_set>` to the teacher"
        )
    teacher_labels = members(graph, teacher_set)
    student_labels = members(graph, student_set)
    for set_iri, labels in ((teacher_set, teacher_labels), (student_set, student_labels)):
        if not labels:
            raise LabelMapError(
                f"label set '{V.local_name(set_iri)}' has no labels; add labels with "
                f"`kgkd:inLabelSet :{V.local_name(set_iri)} ; kgkd:labelIndex 0`"
            )
    index = {iri: j for j, iri in enumerate(student_labels)}
    mapping = tuple(resolve_label(graph, lab, index, teacher) for lab in teacher_labels)
    unmapped = [V.local_name(lab) for lab, j in zip(teacher_labels, mapping) if j < 0]
    if len(unmapped) == len(teacher_labels):
        raise LabelMapError(
            f"teacher '{teacher}' (label set '{V.local_name(teacher_set)}') has no label that resolves into "
            f"student label set '{V.local_name(student_set)}'; unmapped labels: {', '.join(unmapped)}; link "
            "them with kgkd:equivalentLabel or kgkd:broaderLabel"
        )
    if unmapped:
        log.info(
            "teacher '%s': labels without a student counterpart: %s", teacher, ", ".join(unmapped)
        )
    return LabelMap(
        teacher_labels=tuple(V.local_name(x) for x in teacher_labels),
        student_labels=tuple(V.local_name(x) for x in student_labels),
        mapping=mapping,
        teacher=teacher,
    )
