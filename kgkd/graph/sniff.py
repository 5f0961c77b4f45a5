"""Tell the RDF family of a file from its first characters, to catch a wrong extension.

Three families are told apart: RDF/XML (and TriX), JSON-LD and the line/Turtle family
(Turtle, N-Triples, N-Quads, TriG, N3). A file whose content belongs to another family than
its extension says gets one clear error instead of a parser's confusing one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: An XML document start: declaration, comment, doctype or an RDF / TriX root element.
_XML = re.compile(r"<(\?xml|!--|!DOCTYPE|[A-Za-z_][\w.-]*:RDF[\s>/]|RDF[\s>/]|TriX[\s>/])")
#: A JSON document start: an object with a key (or empty), or an array of objects (or empty).
_JSON = re.compile(r"(\{\s*(\"|\})|\[\s*(\{|\]))")


@dataclass(frozen=True)
class Family:
    """One family of RDF syntaxes: how to name it, which extension and --format fit it."""

    name: str
    extension: str
    format: str
    members: frozenset[str]


XML = Family("RDF/XML", ".rdf", "xml", frozenset({"xml", "application/rdf+xml", "pretty-xml", "trix"}))
JSON_LD = Family("JSON-LD", ".jsonld", "json-ld", frozenset({"json-ld", "jsonld", "application/ld+json"}))
TEXT = Family(
    "Turtle / N-Triples",
    ".ttl",
    "turtle",
    frozenset({"turtle", "ttl", "text/turtle", "nt", "ntriples", "nt11", "n3", "trig", "nquads"}),
)
FAMILIES = (XML, JSON_LD, TEXT)


def family_of_format(format: str) -> Family | None:
    """The family an rdflib format name belongs to (``None`` for formats kgkd does not sniff)."""
    return next((f for f in FAMILIES if format in f.members), None)


def sniff(text: str) -> Family | None:
    """The family ``text`` looks like from its first non-blank characters (``None``: empty)."""
    head = text.lstrip("\ufeff \t\r\n")[:512]
    if not head:
        return None
    if _XML.match(head):
        return XML
    if _JSON.match(head):
        return JSON_LD
    return TEXT


def mismatch(text: str, format: str) -> Family | None:
    """The family ``text`` belongs to when that differs from ``format``'s family, else ``None``."""
    expected = family_of_format(format)
    found = sniff(text)
    if expected is None or found is None or found is expected:
        return None
    return found
