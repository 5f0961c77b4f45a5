"""SPARQL over a loaded graph, refused before evaluation when it would reach the network."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from pyparsing import ParseException
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.plugins.sparql import prepareQuery

from kgkd.errors import GraphError
from kgkd.graph.security import check_query_algebra

QueryResult = list[dict[str, Any]] | bool

#: The first keyword of a SPARQL 1.1 Update operation, after any PREFIX / BASE declarations.
_UPDATE = re.compile(
    r"^\s*(?:(?:PREFIX\s+[^\s:]*:\s*<[^>]*>|BASE\s*<[^>]*>)\s*)*"
    r"(INSERT|DELETE|LOAD|CLEAR|DROP|CREATE|ADD|MOVE|COPY|WITH)\b",
    re.IGNORECASE,
)
_COMMENT = re.compile(r"^\s*#.*$", re.MULTILINE)


def update_keyword(sparql: str) -> str | None:
    """The operation keyword (``INSERT`` ...) when ``sparql`` is a SPARQL Update, else ``None``."""
    match = _UPDATE.match(_COMMENT.sub("", sparql))
    if match:
        return match.group(1).upper()
    try:  # an update whose first operation the pattern missed (e.g. comments mid-prologue)
        from rdflib.plugins.sparql.parser import parseUpdate

        parsed = parseUpdate(sparql)
    except Exception:  # noqa: BLE001 - not an update either
        return None
    request = getattr(parsed, "request", None) or []
    return str(getattr(request[0], "name", "UPDATE")).upper() if request else None


def refuse_updates(sparql: str) -> None:
    """Raise when ``sparql`` would change the graph: kgkd queries are read-only."""
    keyword = update_keyword(sparql)
    if keyword is not None:
        raise GraphError(
            f"read-only: updates are not allowed (this is a SPARQL {keyword}); kgkd runs SELECT, ASK, "
            "CONSTRUCT and DESCRIBE queries on the loaded graph, so edit the graph file to change it"
        )


def to_python(term: object) -> Any:
    """IRIs → str, literals → Python values, blank nodes → ``_:id``, unbound → None."""
    if term is None:
        return None
    if isinstance(term, Literal):
        value = term.toPython()
        if isinstance(value, Decimal):
            return float(value)
        return str(term) if isinstance(value, Literal) else value
    if isinstance(term, BNode):
        return f"_:{term}"
    if isinstance(term, URIRef):
        return str(term)
    return str(term)


def run_query(graph: Graph, sparql: str) -> QueryResult:
    """Run a SPARQL query on ``graph``.

    SELECT → list of ``{variable: value}`` dicts (in projection order); ASK → bool;
    CONSTRUCT / DESCRIBE → list of ``{"subject", "predicate", "object"}`` dicts.
    The graph's prefixes (kgkd, rdfs, xsd ... and the file's own) are pre-bound. SPARQL
    updates (INSERT, DELETE, LOAD, CLEAR ...) are refused as read-only.
    """
    refuse_updates(sparql)
    try:
        prepared = prepareQuery(sparql, initNs=dict(graph.namespaces()))
    except ParseException as exc:
        raise GraphError(
            f"malformed SPARQL query at line {exc.lineno}, column {exc.col}: {exc.msg}; "
            f"near: {exc.line.strip()!r}"
        ) from exc
    except Exception as exc:  # unknown prefix and similar translation errors
        raise GraphError(f"invalid SPARQL query: {exc}; check prefixes and syntax") from exc
    check_query_algebra(prepared.algebra)
    result = graph.query(prepared)
    if result.type == "ASK":
        return bool(result.askAnswer)
    if result.type == "SELECT":
        names = [str(v) for v in (result.vars or [])]
        return [{name: to_python(row[i]) for i, name in enumerate(names)} for row in result]
    return [
        {"subject": to_python(s), "predicate": to_python(p), "object": to_python(o)}
        for s, p, o in result  # type: ignore[misc]
    ]
