"""Graph validation: kgkd structural rules first (precise messages), then the SHACL shapes.

All problems found are reported together in one :class:`GraphValidationError`
whose lines each name the node, the property and the fix.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from functools import lru_cache
from importlib import resources

import networkx as nx
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, SH

from kgkd.errors import GraphValidationError
from kgkd.graph import vocab as V
from kgkd.graph.reader import label_index, literal_number, typed_nodes, weighted_links
from kgkd.utils.logging import get_logger

log = get_logger(__name__)


@lru_cache(maxsize=1)
def shapes_graph() -> Graph:
    """The SHACL shapes shipped in ``kgkd/graph/shapes/kgkd.ttl`` (parsed once)."""
    text = resources.files("kgkd.graph").joinpath("shapes/kgkd.ttl").read_text(encoding="utf-8")
    return Graph().parse(data=text, format="turtle")


def _qname(graph: Graph, term: object) -> str:
    if isinstance(term, URIRef):
        try:
            return graph.namespace_manager.normalizeUri(term)
        except Exception:  # noqa: BLE001 - fall back to the raw IRI
            return f"<{term}>"
    return str(term)


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_not_empty(graph: Graph) -> list[str]:
    if len(graph) == 0:
        return [
            "the graph is empty (no triples); add domains and teachers, e.g. `:imdb a kgkd:Domain`"
        ]
    if not any(next(graph.subjects(RDF.type, cls), None) is not None for cls in V.NODE_TYPES):
        message = (
            "the graph holds no kgkd nodes (nothing typed kgkd:Domain, kgkd:Teacher, kgkd:Label ...); "
            f"type your nodes, e.g. `:imdb a kgkd:Domain`, with prefix kgkd: <{V.KGKD}>"
        )
        return [message]
    return []


def check_teacher_domains(graph: Graph) -> list[str]:
    domains = typed_nodes(graph, V.Domain)
    names = [V.local_name(d) for d in domains]
    problems = []
    for teacher in typed_nodes(graph, V.Teacher):
        for dom in graph.objects(teacher, V.trainedOn):
            if dom not in domains:
                name = V.local_name(dom)
                problems.append(
                    f"teacher '{V.local_name(teacher)}' kgkd:trainedOn points to unknown domain '{name}'"
                    f"{_did_you_mean(name, names)}; declare `{_qname(graph, dom)} a kgkd:Domain` or fix the name"
                )
    return problems


def check_weights(graph: Graph) -> list[str]:
    problems = []
    for subject in sorted(set(graph.subjects()), key=str):
        if not isinstance(subject, URIRef):
            continue
        for prop in V.WEIGHTED_RELATIONS:
            for tgt, raw, bnode in weighted_links(graph, subject, prop):
                if bnode is None:
                    continue
                where = (
                    f"node '{V.local_name(subject)}' {_qname(graph, prop)} → '{V.local_name(tgt)}'"
                )
                number = literal_number(raw)
                if raw is None:
                    problems.append(
                        f"{where} has no kgkd:weight; add `kgkd:weight 0.8` (a number in [0, 1])"
                    )
                elif number is None:
                    problems.append(
                        f"{where} has kgkd:weight {raw.n3() if isinstance(raw, Literal) else raw!s}, "
                        "which is not a number; write a bare number in [0, 1] such as 0.8"
                    )
                elif not 0.0 <= number <= 1.0:
                    problems.append(
                        f"{where} has kgkd:weight {number:g}, outside [0, 1]; use a number between 0 and 1"
                    )
        for prop in V.WEIGHTED_RELATIONS:
            for obj in graph.objects(subject, prop):
                if not isinstance(obj, URIRef) and graph.value(obj, V.target) is None:
                    problems.append(
                        f"node '{V.local_name(subject)}' {_qname(graph, prop)} has a blank node without "
                        "kgkd:target; write [ kgkd:target :other_domain ; kgkd:weight 0.8 ]"
                    )
    return problems


def check_subdomain_cycles(graph: Graph) -> list[str]:
    dg = nx.DiGraph()
    dg.add_edges_from(
        (V.local_name(s), V.local_name(o))
        for s, o in graph.subject_objects(V.subDomainOf)
        if isinstance(o, URIRef)
    )
    try:
        cycle = nx.find_cycle(dg)
    except nx.NetworkXNoCycle:
        return []
    path = " → ".join([u for u, _ in cycle] + [cycle[0][0]])
    return [f"kgkd:subDomainOf forms a cycle {path}; remove one of these kgkd:subDomainOf links"]


def check_unique_names(graph: Graph) -> list[str]:
    seen: dict[str, set[str]] = defaultdict(set)
    for cls in V.NODE_TYPES:
        for iri in typed_nodes(graph, cls):
            seen[V.local_name(iri)].add(str(iri))
    return [
        f"name '{name}' is used by several IRIs ({', '.join(sorted(iris))}); node names (IRI local names) "
        "must be unique, rename one of them"
        for name, iris in sorted(seen.items())
        if len(iris) > 1
    ]


def check_label_indices(graph: Graph) -> list[str]:
    problems = []
    for ls in typed_nodes(graph, V.LabelSet):
        by_index: dict[int, list[str]] = defaultdict(list)
        for label in graph.subjects(V.inLabelSet, ls):
            idx = label_index(graph, label)  # type: ignore[arg-type]
            if idx is not None:
                by_index[idx].append(V.local_name(label))
        for idx, names in sorted(by_index.items()):
            if len(names) > 1:
                problems.append(
                    f"label set '{V.local_name(ls)}': labels {', '.join(sorted(names))} share kgkd:labelIndex "
                    f"{idx}; give each label its own 0-based index"
                )
        if by_index and sorted(by_index) != list(range(len(by_index))):
            problems.append(
                f"label set '{V.local_name(ls)}': kgkd:labelIndex values {sorted(by_index)} are not 0..{len(by_index) - 1}; "
                "number the labels 0, 1, 2 ... without gaps"
            )
    return problems


STRUCTURAL_RULES = (
    check_teacher_domains,
    check_weights,
    check_subdomain_cycles,
    check_unique_names,
    check_label_indices,
)


def shacl_problems(graph: Graph) -> tuple[list[str], list[str]]:
    """Run pyshacl with the shipped shapes; returns (violations, warnings) as readable lines."""
    from pyshacl import validate  # heavy import: only when validating

    _conforms, report, _text = validate(
        graph,
        shacl_graph=shapes_graph(),
        inference="none",
        advanced=False,
        allow_warnings=True,
        do_owl_imports=False,
    )
    violations, warnings = [], []
    for result in report.subjects(RDF.type, SH.ValidationResult):
        focus = report.value(result, SH.focusNode)
        path = report.value(result, SH.resultPath)
        value = report.value(result, SH.value)
        message = report.value(result, SH.resultMessage)
        severity = report.value(result, SH.resultSeverity)
        node = f"'{V.local_name(focus)}'" if isinstance(focus, URIRef) else "a blank node"
        via = f" {_qname(graph, path)}" if path is not None else ""
        got = (
            f" (value {value.n3(graph.namespace_manager) if hasattr(value, 'n3') else value})"
            if value is not None
            else ""
        )
        line = f"node {node}{via}{got}: {message}"
        (warnings if severity in (SH.Warning, SH.Info) else violations).append(line)
    return sorted(set(violations)), sorted(set(warnings))


def validate_graph(graph: Graph, where: str) -> list[str]:
    """Raise GraphValidationError listing every problem; return SHACL warnings (also logged)."""
    problems = check_not_empty(graph)
    if not problems:
        for rule in STRUCTURAL_RULES:
            problems.extend(rule(graph))
    warnings: list[str] = []
    if not problems:
        problems, warnings = shacl_problems(graph)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise GraphValidationError(
            f"{where}: invalid knowledge graph ({len(problems)} problem(s)):\n{lines}"
        )
    for warning in warnings:
        log.warning("%s: %s", where, warning)
    return warnings
