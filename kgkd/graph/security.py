"""Network-safety guards: kgkd never fetches anything while reading graphs or queries.

rdflib can reach the network in three ways that matter here: parsing from a URL
source, evaluating SPARQL ``SERVICE`` clauses (and ``FROM`` dataset clauses, which
load graphs by IRI), and JSON-LD remote ``@context`` documents. ``owl:imports`` is
never followed by rdflib itself, and kgkd does not follow it either. Every guard
below runs *before* any I/O and raises :class:`~kgkd.errors.GraphSecurityError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from rdflib import Graph
from rdflib.namespace import OWL
from rdflib.plugins.sparql.parserutils import CompValue

from kgkd.errors import GraphSecurityError
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(source: str) -> bool:
    """True when ``source`` looks like a URL (``http://``, ``ftp://`` ...) rather than a path."""
    return bool(_URL.match(source)) and not source.lower().startswith("file://")


def check_source(source: str) -> None:
    """Refuse URL sources: graphs are read from local files or strings only."""
    if is_url(source):
        raise GraphSecurityError(
            f"refusing to read a graph from the URL '{source}': kgkd never fetches graphs over the "
            "network; download the file and pass its local path"
        )


def _walk_json(obj: Any) -> Iterable[Any]:
    if isinstance(obj, dict):
        yield obj
        for value in obj.values():
            yield from _walk_json(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _walk_json(value)


def check_jsonld(text: str, where: str) -> None:
    """Refuse JSON-LD documents whose ``@context`` points to a remote document."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return  # the parser reports the syntax error with its line
    for node in _walk_json(doc):
        ctx = node.get("@context") if isinstance(node, dict) else None
        refs = ctx if isinstance(ctx, list) else [ctx]
        for ref in refs:
            if isinstance(ref, str):
                raise GraphSecurityError(
                    f"{where}: JSON-LD @context '{ref}' is a remote document and kgkd never fetches "
                    "it; inline the context object in the file instead"
                )


def check_imports(graph: Graph, where: str, resolve_imports: bool) -> None:
    """Warn about ``owl:imports`` (never followed); raise if the caller asked to follow them."""
    imports = sorted(str(o) for o in graph.objects(None, OWL.imports))
    if not imports:
        return
    if resolve_imports:
        raise GraphSecurityError(
            f"{where}: owl:imports of {', '.join(imports)} would fetch over the network and kgkd never "
            "does; download the imported files and merge them with KnowledgeGraph.add_statements "
            "or load them yourself"
        )
    log.warning(
        "%s: ignoring owl:imports of %s (kgkd never fetches imports)", where, ", ".join(imports)
    )


def _find(part: Any, name: str) -> bool:
    if isinstance(part, CompValue):
        if part.name == name:
            return True
        return any(_find(v, name) for v in part.values())
    if isinstance(part, (list, tuple)):
        return any(_find(v, name) for v in part)
    return False


def check_query_algebra(algebra: CompValue) -> None:
    """Refuse a translated SPARQL query that would reach out: SERVICE or FROM / FROM NAMED."""
    if _find(algebra, "ServiceGraphPattern"):
        raise GraphSecurityError(
            "refusing SPARQL query with a SERVICE clause: kgkd never sends queries to remote "
            "endpoints; remove the SERVICE block and query the loaded graph only"
        )
    if getattr(algebra, "datasetClause", None):
        raise GraphSecurityError(
            "refusing SPARQL query with FROM / FROM NAMED: rdflib would load those graphs by IRI "
            "(a network fetch); remove the FROM clause, the query runs on the loaded graph"
        )
