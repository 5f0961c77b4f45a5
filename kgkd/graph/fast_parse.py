"""Fast parsing of large Turtle / N-Triples / N-Quads / TriG text with pyoxigraph (Rust).

rdflib's own parsers run at about 25,000 triples per second, so a 20,000-domain graph
(~400,000 triples) took 14 s just to load. pyoxigraph parses the same text in under a second;
its terms are converted to rdflib terms (each distinct term once) and added to an ordinary
rdflib ``Graph`` (on rdflib's ``SimpleMemory`` store: named graphs are merged into one graph
anyway, and without their bookkeeping adding and iterating triples is 2-2.5x faster), so
everything downstream is unchanged.

The fast path is only taken where it gives the very graph rdflib would: for text at least
:data:`FAST_PARSE_MIN_CHARS` long, without ``^^xsd:string`` literals (RDF 1.1 parsers, like
pyoxigraph, do not tell them apart from plain strings, rdflib does) and without upper-case
language tags (pyoxigraph lower-cases them). Any pyoxigraph error (or pyoxigraph missing) returns
``None`` and the caller parses with rdflib, whose error messages carry file and line.
"""

from __future__ import annotations

import re
from typing import Any

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import XSD
from rdflib.plugins.stores.memory import SimpleMemory

from kgkd.graph.gc_pause import paused_gc
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

#: Texts shorter than this are parsed by rdflib (fast enough, and the reference behaviour).
FAST_PARSE_MIN_CHARS = 100_000
#: rdflib format name → pyoxigraph format attribute name.
_FORMATS = {
    "turtle": "TURTLE",
    "ttl": "TURTLE",
    "nt": "N_TRIPLES",
    "ntriples": "N_TRIPLES",
    "nt11": "N_TRIPLES",
    "nquads": "N_QUADS",
    "trig": "TRIG",
}
#: Text the fast path would read differently from rdflib (see the module docstring).
_RDFLIB_ONLY = re.compile(
    r"\^\^\s*(?:xsd:string\b|<http://www\.w3\.org/2001/XMLSchema#string>)|[\"']@[A-Za-z0-9-]*[A-Z]"
)
_XSD_STRING = str(XSD.string)


class CountedSimpleMemory(SimpleMemory):
    """rdflib's ``SimpleMemory`` store whose ``len`` is counted once and then remembered
    (``SimpleMemory`` walks every triple for each ``len(graph)``); any change forgets it."""

    def __init__(self) -> None:
        super().__init__()
        self._count: int | None = None

    def add(self, triple: Any, context: Any, quoted: bool = False) -> None:
        self._count = None
        super().add(triple, context, quoted)

    def remove(self, triple_pattern: Any, context: Any = None) -> None:
        self._count = None
        super().remove(triple_pattern, context)

    def __len__(self, context: Any = None) -> int:
        if self._count is None:
            self._count = super().__len__(context)
        return self._count


def _converter() -> Any:
    """A function pyoxigraph term → rdflib term that builds each distinct term once."""
    import pyoxigraph as ox

    cache: dict[Any, Any] = {}
    named, blank = ox.NamedNode, ox.BlankNode

    def convert(term: Any) -> Any:
        hit = cache.get(term)
        if hit is not None:
            return hit
        if isinstance(term, named):
            out: Any = URIRef(term.value)
        elif isinstance(term, blank):
            out = BNode(term.value)
        elif term.language:
            out = Literal(term.value, lang=term.language)
        else:
            dtype = term.datatype.value
            out = Literal(term.value) if dtype == _XSD_STRING else Literal(term.value, datatype=URIRef(dtype))
        cache[term] = out
        return out

    return convert


def fast_parse(text: str, format: str) -> Graph | None:
    """Parse ``text`` with pyoxigraph into a new rdflib ``Graph`` (named graphs merged into it),
    or return ``None`` when the fast path does not apply or fails (the caller then uses rdflib)."""
    name = _FORMATS.get(format)
    if name is None or len(text) < FAST_PARSE_MIN_CHARS or _RDFLIB_ONLY.search(text):
        return None
    try:
        import pyoxigraph as ox
    except ImportError:  # pragma: no cover - a declared dependency; rdflib still works without it
        log.debug("pyoxigraph is not installed; parsing with rdflib")
        return None
    with paused_gc():
        try:
            parser = ox.parse(text.encode("utf-8"), format=getattr(ox.RdfFormat, name))
            quads = list(parser)
        except (SyntaxError, ValueError) as exc:
            log.debug("pyoxigraph could not parse the text (%s); parsing with rdflib", exc)
            return None
        convert = _converter()
        store = CountedSimpleMemory()  # no named-graph bookkeeping: 2.5x faster to fill
        graph = Graph(store=store)
        add = SimpleMemory.add  # bulk load: skip the per-triple forgetting of the count
        for quad in quads:
            add(store, (convert(quad.subject), convert(quad.predicate), convert(quad.object)), graph, False)
        for prefix, namespace in (parser.prefixes or {}).items():
            graph.bind(prefix, namespace)
    return graph
