"""``kgkd graph``: validate, show (summary + PNG) and query knowledge-graph files."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the graph stack (rdflib, torch) loads only when a command runs
    from kgkd.graph.knowledge_graph import KnowledgeGraph


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Render dict rows as a plain-text table (columns in ``columns`` or first-row order)."""
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0].keys())
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join([line, rule, *body])


def _compact(kg: KnowledgeGraph, value: Any) -> Any:
    """Shorten IRIs to prefixed names (``kgkd:Domain``, ``:imdb``) for display."""
    if isinstance(value, str) and "://" in value:
        try:
            return kg.graph.namespace_manager.normalizeUri(value)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - leave unusual IRIs as they are
            return value
    return value


def _load(args: argparse.Namespace) -> KnowledgeGraph:
    """Load ``args.file``; then freeze the loaded objects out of the garbage collector's scans:
    the command exits soon, and scanning two million graph objects at exit took ~4 s for a
    20,000-domain graph (they form no cycles, so nothing is kept that would be freed)."""
    import gc

    from kgkd.graph.knowledge_graph import KnowledgeGraph

    kg = KnowledgeGraph.from_file(args.file, format=args.format)
    gc.freeze()
    return kg


def _validate(args: argparse.Namespace) -> int:
    from kgkd.graph.triple_index import TripleIndex

    kg = _load(args)
    index = TripleIndex(kg.graph)  # one pass over the triples, shared by validate and summary
    counts = kg.validate(engine=args.engine, index=index).summary(index)
    print(
        f"{args.file}: valid ({counts['domains']} domains, {counts['teachers']} teachers, "
        f"{counts['labels']} labels, {counts['relations']} relations, {counts['triples']} triples)"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from kgkd.graph import vocab as V
    from kgkd.graph.reader import read_domain, read_teacher, typed_nodes
    from kgkd.graph.triple_index import TripleIndex

    kg = _load(args)
    index = TripleIndex(kg.graph)
    if not args.no_validate:
        kg.validate(engine=args.engine, index=index)
    counts = kg.summary(index)
    print(format_table([{"kind": k, "count": v} for k, v in counts.items() if v]))
    limit = None if args.rows <= 0 else args.rows
    domains = typed_nodes(kg.graph, V.Domain)
    rows = [
        {
            "domain": d.name,
            "modality": d.modality,
            "task": d.task,
            "label set": d.label_set,
            "description": d.description,
        }
        for d in (read_domain(kg.graph, iri) for iri in domains[:limit])
    ]
    print()
    print(format_table(rows) + _more(len(domains), len(rows), "domains"))
    teachers = typed_nodes(kg.graph, V.Teacher)
    rows = [
        {
            "teacher": t.name,
            "architecture": t.architecture,
            "trained on": ", ".join(t.trained_on),
            "predicts": t.label_set,
        }
        for t in (read_teacher(kg.graph, iri) for iri in teachers[:limit])
    ]
    print()
    print(format_table(rows) + _more(len(teachers), len(rows), "teachers"))
    if args.out:
        from kgkd.graph.draw import draw_graph

        path = draw_graph(kg, args.out, max_nodes=args.max_nodes)
        print(f"\nwrote {path}")
    return 0


def _more(total: int, shown: int, what: str) -> str:
    """A last line saying how many rows were left out (none when all were shown)."""
    if total <= shown:
        return ""
    return f"\n... {total - shown:,} more {what} (--rows 0 shows all, or use `kgkd graph query`)"


def _query(args: argparse.Namespace) -> int:
    from kgkd.graph.knowledge_graph import KnowledgeGraph

    kg = KnowledgeGraph.from_file(args.file, format=args.format)
    result = kg.query(args.sparql)
    if isinstance(result, bool):
        print("true" if result else "false")
        return 0
    print(format_table([{k: _compact(kg, v) for k, v in row.items()} for row in result]))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``kgkd graph {validate,show,query}``."""
    parser = subparsers.add_parser(
        "graph",
        help="validate, inspect, draw and query knowledge graphs",
        description="Work with kgkd knowledge-graph files (Turtle or any RDF format).",
    )
    sub = parser.add_subparsers(dest="graph_command", metavar="ACTION", required=True)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("file", help="graph file (.ttl, .nt, .rdf, .jsonld ...)")
        p.add_argument(
            "--format",
            default=None,
            help="RDF format, overriding the extension (turtle, xml, json-ld, nt, trig ...)",
        )
        return p

    def engine_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--engine",
            choices=("auto", "shacl", "fast"),
            default="auto",
            help="shapes engine: pyshacl ('shacl'), kgkd's fast evaluator of the same shapes and "
            "messages ('fast'), or 'auto' (fast from 5,000 triples on; default)",
        )

    p = add("validate", "check a graph against the kgkd SHACL shapes and structural rules")
    engine_option(p)
    p.set_defaults(func=_validate)
    p = add("show", "print a summary of a graph and optionally draw it as a PNG")
    p.add_argument("--out", default=None, help="write a picture of the graph to this PNG file")
    p.add_argument(
        "--no-validate", action="store_true", help="show the graph without validating it first"
    )
    p.add_argument(
        "--rows", type=int, default=50, help="domains / teachers listed (default 50; 0 = all)"
    )
    p.add_argument(
        "--max-nodes",
        type=int,
        default=80,
        help="draw every node up to this many; above, a summary view by group (default 80)",
    )
    engine_option(p)
    p.set_defaults(func=_show)
    p = add(
        "query",
        "run a read-only SPARQL SELECT/ASK/CONSTRUCT query (prefixes kgkd:, rdfs:, xsd: ... "
        "are pre-bound; updates are refused)",
    )
    p.add_argument("sparql", help="the SPARQL query text")
    p.set_defaults(func=_query)
