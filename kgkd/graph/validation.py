"""Graph validation: kgkd structural rules first (precise messages), then the SHACL shapes.

All problems found are reported together in one :class:`GraphValidationError`
whose lines each name the node, the property and the fix.

The shapes run on one of two engines with the same rules and messages: pyshacl (the
reference) or :mod:`kgkd.graph.shapes_engine`, a fast evaluator of the SHACL subset the
shipped shapes use. ``engine="auto"`` takes pyshacl for graphs under
:data:`FAST_ENGINE_MIN_TRIPLES` triples and the fast engine above (pyshacl needs ~3 ms per node).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

import networkx as nx
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, SH

from kgkd.errors import GraphValidationError
from kgkd.graph import vocab as V
from kgkd.graph.gc_pause import paused_gc
from kgkd.graph.reader import label_index, literal_number
from kgkd.graph.shapes_engine import CompiledShapes, Result, UnsupportedShapes, compile_shapes
from kgkd.graph.triple_index import TripleIndex
from kgkd.utils.logging import get_logger
from kgkd.utils.suggest import did_you_mean

log = get_logger(__name__)

#: ``engine="auto"`` runs the fast shapes engine on graphs with at least this many triples.
FAST_ENGINE_MIN_TRIPLES = 5_000
ENGINES = ("auto", "shacl", "fast")
#: The data layer's rule for domain names (``kgkd.data.user.check_domain_name``): they are
#: file names and ``kgkd data add`` names, so ASCII letters, digits and '_' only.
DOMAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Characters rdflib refuses to write in an IRI (``<a b>`` cannot be serialised).
_BAD_IRI_CHARS = re.compile(r'[<>"{}|\\^`\s\x00-\x1f\x7f]')
#: At most this many duplicate-label warnings are listed one by one.
MAX_LABEL_WARNINGS = 20


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
    close = did_you_mean(name, choices)
    return f" (did you mean '{close}'?)" if close is not None else ""


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


def check_teacher_domains(index: TripleIndex) -> list[str]:
    graph = index.graph
    domain_list = index.typed(V.Domain)
    domains = set(domain_list)
    names = [V.local_name(d) for d in domain_list]
    problems = []
    for teacher in index.typed(V.Teacher):
        for dom in index.objects(teacher, V.trainedOn):
            if dom not in domains:
                name = V.local_name(dom)
                problems.append(
                    f"teacher '{V.local_name(teacher)}' kgkd:trainedOn points to unknown domain '{name}'"
                    f"{_did_you_mean(name, names)}; declare `{_qname(graph, dom)} a kgkd:Domain` or fix the name"
                )
    return problems


def check_weights(index: TripleIndex) -> list[str]:
    graph = index.graph
    targets, weights = index.table(V.target), index.table(V.weight)
    problems = []
    for prop in sorted(V.WEIGHTED_RELATIONS):
        links = index.table(prop)
        for subject in sorted((s for s in links if isinstance(s, URIRef)), key=str):
            found = []  # (target, raw weight, blank node) like reader.weighted_links
            for obj in links[subject]:
                if isinstance(obj, BNode):
                    found.extend(
                        (t, (weights.get(obj) or [None])[0], obj)
                        for t in targets.get(obj, [])
                        if isinstance(t, URIRef)
                    )
            for tgt, raw, _bnode in sorted(found, key=lambda t: str(t[0])):
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
            for obj in links[subject]:
                if not isinstance(obj, URIRef) and not targets.get(obj):
                    problems.append(
                        f"node '{V.local_name(subject)}' {_qname(graph, prop)} has a blank node without "
                        "kgkd:target; write [ kgkd:target :other_domain ; kgkd:weight 0.8 ]"
                    )
    return problems


def _describe_chars(text: str) -> str:
    bad = sorted(set(_BAD_IRI_CHARS.findall(text)))
    names = {" ": "a space", "\t": "a tab", "\n": "a line break"}
    return ", ".join(names.get(c, f"the character {c!r}") for c in bad)


def check_iris(index: TripleIndex) -> list[str]:
    """IRIs rdflib cannot write back (a space in a local name ...): the graph would load,
    validate and then fail when saved, cached or sent to a SPARQL result."""
    search = _BAD_IRI_CHARS.search
    bad = [iri for iri in index.iris() if search(iri)]
    problems = []
    for iri in sorted(bad, key=str):
        fixed = _BAD_IRI_CHARS.sub("_", str(iri))
        problems.append(
            f"node '{V.local_name(iri)}': its IRI <{iri}> holds {_describe_chars(str(iri))}, which an IRI "
            f"cannot contain (the graph could not be saved or serialised); rename it, e.g. <{fixed}>"
        )
    return problems


def ascii_name(name: str) -> str:
    """A valid domain name close to ``name`` (accents dropped, other characters → '_')."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    fixed = re.sub(r"[^A-Za-z0-9_]+", "_", plain).strip("_") or "my_domain"
    return fixed if DOMAIN_NAME.fullmatch(fixed) else f"d_{fixed}"


def check_domain_names(index: TripleIndex) -> list[str]:
    """Domain names the data layer would refuse (``kgkd data add``, data file names)."""
    problems = []
    for iri in index.typed(V.Domain):
        name = V.local_name(iri)
        if not DOMAIN_NAME.fullmatch(name):
            problems.append(
                f"domain name '{name}' must start with a letter or '_' and hold only letters, digits "
                "and '_' (it is also the local name of the domain's graph node); "
                f"use e.g. '{ascii_name(name)}'"
            )
    return problems


def duplicate_label_warnings(index: TripleIndex) -> list[str]:
    """Two domains with the same ``rdfs:label`` cannot be told apart in reports and plots."""
    labels = index.table(RDFS.label)
    by_label: dict[str, set[str]] = defaultdict(set)
    for node in index.typed(V.Domain):
        for label in labels.get(node, []):
            if isinstance(label, Literal):
                by_label[str(label)].add(V.local_name(node))
    clashes = sorted((sorted(names), label) for label, names in by_label.items() if len(names) > 1)
    warnings = [
        f"domains {', '.join(repr(n) for n in names)} share the rdfs:label \"{label}\"; give each "
        "domain its own label (labels name the domains in reports and plots)"
        for names, label in clashes[:MAX_LABEL_WARNINGS]
    ]
    if len(clashes) > MAX_LABEL_WARNINGS:
        warnings.append(f"... and {len(clashes) - MAX_LABEL_WARNINGS} more shared domain labels")
    return warnings


def check_subdomain_cycles(index: TripleIndex) -> list[str]:
    dg = nx.DiGraph()
    dg.add_edges_from(
        (V.local_name(s), V.local_name(o))
        for s, objects in index.table(V.subDomainOf).items()
        for o in objects
        if isinstance(o, URIRef)
    )
    try:
        cycle = nx.find_cycle(dg)
    except nx.NetworkXNoCycle:
        return []
    path = " → ".join([u for u, _ in cycle] + [cycle[0][0]])
    return [f"kgkd:subDomainOf forms a cycle {path}; remove one of these kgkd:subDomainOf links"]


def check_unique_names(index: TripleIndex) -> list[str]:
    seen: dict[str, set[str]] = defaultdict(set)
    for cls in V.NODE_TYPES:
        for iri in index.typed(cls):
            seen[V.local_name(iri)].add(str(iri))
    return [
        f"name '{name}' is used by several IRIs ({', '.join(sorted(iris))}); node names (IRI local names) "
        "must be unique, rename one of them"
        for name, iris in sorted(seen.items())
        if len(iris) > 1
    ]


def check_label_indices(index: TripleIndex) -> list[str]:
    graph = index.graph
    problems = []
    for ls in index.typed(V.LabelSet):
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
    check_iris,
    check_domain_names,
    check_teacher_domains,
    check_weights,
    check_subdomain_cycles,
    check_unique_names,
    check_label_indices,
)


@lru_cache(maxsize=1)
def compiled_shapes() -> CompiledShapes | None:
    """The shipped shapes compiled for the fast engine (``None`` if they use an unsupported feature)."""
    try:
        return compile_shapes(shapes_graph())
    except UnsupportedShapes as exc:
        log.debug("fast shapes engine unavailable (%s); using pyshacl", exc)
        return None


def pyshacl_results(graph: Graph) -> list[Result]:
    """Run pyshacl with the shipped shapes; one result tuple per sh:ValidationResult."""
    from pyshacl import validate  # heavy import: only when validating

    _conforms, report, _text = validate(
        graph,
        shacl_graph=shapes_graph(),
        inference="none",
        advanced=False,
        allow_warnings=True,
        do_owl_imports=False,
    )
    return [
        (
            report.value(result, SH.focusNode),
            report.value(result, SH.resultPath),
            report.value(result, SH.value),
            str(report.value(result, SH.resultMessage)),
            report.value(result, SH.resultSeverity),
        )
        for result in report.subjects(RDF.type, SH.ValidationResult)
    ]


def pick_engine(graph: Graph, engine: str = "auto", size: int | None = None) -> str:
    """``'shacl'`` or ``'fast'``: which engine :func:`shacl_problems` runs for ``engine``
    (``size``: the graph's triple count when known)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "shacl" or compiled_shapes() is None:
        return "shacl"
    if engine == "fast" or (len(graph) if size is None else size) >= FAST_ENGINE_MIN_TRIPLES:
        return "fast"
    return "shacl"


def format_results(graph: Graph, results: Iterable[Result]) -> tuple[list[str], list[str]]:
    """(violations, warnings) as readable lines, sorted and without repeats."""
    violations, warnings = set(), set()
    for focus, path, value, message, severity in results:
        node = f"'{V.local_name(focus)}'" if isinstance(focus, URIRef) else "a blank node"
        via = f" {_qname(graph, path)}" if path is not None else ""
        got = (
            f" (value {value.n3(graph.namespace_manager) if hasattr(value, 'n3') else value})"
            if value is not None
            else ""
        )
        line = f"node {node}{via}{got}: {message}"
        (warnings if severity in (SH.Warning, SH.Info) else violations).add(line)
    return sorted(violations), sorted(warnings)


def shacl_problems(
    graph: Graph, engine: str = "auto", index: TripleIndex | None = None
) -> tuple[list[str], list[str]]:
    """Check the shipped shapes; returns (violations, warnings) as readable lines."""
    if pick_engine(graph, engine, None if index is None else index.size) == "fast":
        shapes = compiled_shapes()
        assert shapes is not None
        return format_results(graph, shapes.run(graph, index))
    return format_results(graph, pyshacl_results(graph))


def validate_graph(
    graph: Graph, where: str, engine: str = "auto", index: TripleIndex | None = None
) -> list[str]:
    """Raise GraphValidationError listing every problem; return warnings (also logged).

    ``engine``: ``"shacl"`` (pyshacl), ``"fast"`` (:mod:`kgkd.graph.shapes_engine`) or
    ``"auto"`` (fast from :data:`FAST_ENGINE_MIN_TRIPLES` triples on). ``index``: a
    :class:`TripleIndex` of ``graph`` as it is now, when the caller has one to share.
    """
    with paused_gc():  # millions of short-lived objects on large graphs, no cycles among them
        problems = check_not_empty(graph)
        if not problems and index is None:
            index = TripleIndex(graph)
        if not problems and index is not None:
            for rule in STRUCTURAL_RULES:
                problems.extend(rule(index))
        warnings: list[str] = []
        if index is not None and not problems:
            problems, warnings = shacl_problems(graph, engine, index)
            warnings = duplicate_label_warnings(index) + warnings
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise GraphValidationError(
            f"{where}: invalid knowledge graph ({len(problems)} problem(s)):\n{lines}"
        )
    for warning in warnings:
        log.warning("%s: %s", where, warning)
    return warnings
