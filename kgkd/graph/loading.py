"""Reading RDF from files or strings into an rdflib ``Graph``, with file:line errors.

Parsing always goes through an in-memory string (never a URL source), so no
parser can open a network connection; see :mod:`kgkd.graph.security`.
"""

from __future__ import annotations

import re
import xml.sax
from pathlib import Path

from rdflib import Dataset, Graph
from rdflib.plugins.parsers.notation3 import BadSyntax
from rdflib.util import guess_format

from kgkd.errors import GraphError, GraphParseError
from kgkd.graph.fast_parse import fast_parse
from kgkd.graph.security import check_jsonld, check_source
from kgkd.graph.sniff import family_of_format, mismatch
from kgkd.graph.vocab import PREFIXES
from kgkd.paths import graphs_dir

#: Formats whose documents may hold several named graphs (merged into one graph).
_QUAD_FORMATS = frozenset({"trig", "nquads", "trix"})
_EXTRA_FORMATS = {".jsonld": "json-ld", ".json": "json-ld"}
_LINE = re.compile(r"line[: ]+(\d+)", re.IGNORECASE)
#: Extensions listed when a directory is passed as a graph path.
_GRAPH_SUFFIXES = frozenset({".ttl", ".nt", ".nq", ".rdf", ".owl", ".xml", ".jsonld", ".json", ".trig", ".n3"})


def resolve_format(path: Path, format: str | None) -> str:
    """The rdflib format name for ``path`` (explicit ``format`` wins)."""
    if format:
        return format
    fmt = guess_format(str(path)) or _EXTRA_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise GraphParseError(
            f"{path}: cannot tell the RDF format from the extension '{path.suffix}'; rename the file "
            "(.ttl, .nt, .rdf, .jsonld, .trig ...) or pass format='turtle'"
        )
    return fmt


def _error_line(exc: BaseException) -> int | None:
    if isinstance(exc, BadSyntax):
        return exc.lines + 1
    if isinstance(exc, xml.sax.SAXParseException):
        return exc.getLineNumber()
    lineno = getattr(exc, "lineno", None)
    if isinstance(lineno, int):
        return lineno
    match = _LINE.search(str(exc))
    return int(match.group(1)) if match else None


def _error_reason(exc: BaseException) -> str:
    if isinstance(exc, BadSyntax):
        return exc._why
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _first_bad_line(text: str, format: str) -> int | None:
    """Line-based formats report no line number: re-parse line by line to find it."""
    for number, row in enumerate(text.splitlines(), start=1):
        if not row.strip() or row.lstrip().startswith("#"):
            continue
        try:
            (Dataset() if format == "nquads" else Graph()).parse(data=row + "\n", format=format)
        except Exception:  # noqa: BLE001 - any failure marks the line
            return number
    return None


def _looks_like_hint(text: str, format: str) -> str:
    """`` (this looks like RDF/XML; ...)`` when the text belongs to another family than ``format``."""
    found = mismatch(text, format)
    if found is None:
        return ""
    return f"; this looks like {found.name}: pass --format {found.format} (or format='{found.format}')"


def parse_text(text: str, format: str, where: str) -> Graph:
    """Parse ``text`` (RDF in ``format``); errors name ``where`` and the line."""
    if format in ("json-ld", "jsonld"):
        check_jsonld(text, where)
    fast = fast_parse(text, format)
    if fast is not None:
        for prefix, ns in PREFIXES.items():
            fast.bind(prefix, ns, override=False)
        return fast
    try:
        if format in _QUAD_FORMATS:
            ds = Dataset()
            ds.parse(data=text, format=format)
            graph = Graph()
            for s, p, o, _ in ds.quads((None, None, None, None)):
                graph.add((s, p, o))
            for prefix, ns in ds.namespaces():
                graph.bind(prefix, ns, override=False)
        else:
            graph = Graph()
            graph.parse(data=text, format=format)
    except GraphError:
        raise
    except Exception as exc:  # rdflib parsers raise many unrelated types
        line = _error_line(exc)
        if line is None and format in ("nt", "ntriples", "nquads"):
            line = _first_bad_line(text, format)
        at = f"{where}:{line}" if line is not None else where
        raise GraphParseError(
            f"{at}: malformed {format}: {_error_reason(exc)}; fix the syntax on that line"
            f"{_looks_like_hint(text, format)}"
        ) from exc
    for prefix, ns in PREFIXES.items():
        graph.bind(prefix, ns, override=False)
    return graph


def read_file(path: str | Path, format: str | None = None) -> Graph:
    """Parse a local RDF file (any format rdflib reads); URLs are refused."""
    check_source(str(path))
    p = Path(path)
    if p.is_dir():
        inside = sorted(x.name for x in p.iterdir() if x.suffix.lower() in _GRAPH_SUFFIXES)[:5]
        example = f"{p / inside[0]}" if inside else f"{p / 'my_graph.ttl'}"
        found = f" (graph files in it: {', '.join(inside)})" if inside else ""
        raise GraphError(
            f"graph path '{p}' is a directory, not a graph file{found}; pass one file, e.g. {example}"
        )
    if not p.is_file():
        hint = "" if p.suffix else " (did you forget the extension, e.g. .ttl?)"
        examples = sorted(
            str(x.relative_to(graphs_dir().parent)) for x in graphs_dir().glob("*.ttl")
        )
        shipped = f" (example graphs: {', '.join(examples)})" if examples else ""
        raise GraphError(f"graph file '{p}' does not exist{hint}; check the path{shipped}")
    fmt = resolve_format(p, format)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise GraphParseError(
            f"{p}: not UTF-8 text ({exc.reason}); save the file as UTF-8"
        ) from exc
    if format is None:
        check_extension(p, text, fmt)
    return parse_text(text, fmt, str(p))


def check_extension(path: Path, text: str, format: str) -> None:
    """Refuse a file whose content is another RDF family than its extension says (RDF/XML saved
    as ``.ttl``, JSON-LD as ``.ttl``, RDF/XML as ``.json`` ...), naming the family it looks like."""
    found = mismatch(text, format)
    if found is None:
        return
    expected = family_of_format(format)
    said = f" (the extension '{path.suffix}' says {expected.name})" if expected else ""
    raise GraphParseError(
        f"{path}: this looks like {found.name}{said}; rename to {found.extension} or pass "
        f"--format {found.format} (format='{found.format}' in Python)"
    )
