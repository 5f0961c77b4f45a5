"""Every bad graph input gets one kgkd error naming file / line / node / property and the fix;
nothing ever reaches the network."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from kgkd.errors import GraphError, GraphParseError, GraphSecurityError, GraphValidationError
from kgkd.graph import KnowledgeGraph
from kgkd.paths import graphs_dir

SENTIMENT = (graphs_dir() / "sentiment.ttl").read_text(encoding="utf-8")
HEAD = """@prefix : <http://ex.org/g#> .
@prefix kgkd: <https://w3id.org/kgkd/vocab#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
"""


def broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the sentiment graph with one edit (the edit must apply)."""
    assert old in SENTIMENT, old
    path = tmp_path / "broken.ttl"
    path.write_text(SENTIMENT.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make any network attempt fail loudly and record it."""
    attempts: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(repr(args[:2]))
        raise AssertionError(f"network access attempted: {args[:2]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    from rdflib.plugins.sparql import evaluate

    monkeypatch.setattr(evaluate, "urlopen", refuse)
    return attempts


# --- parsing -------------------------------------------------------------------------
def test_malformed_turtle_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.ttl"
    path.write_text(
        HEAD + ':imdb a kgkd:Domain ;\n    rdfs:label "IMDb" \n    kgkd:modality "text" .\n'
    )
    with pytest.raises(GraphParseError, match=rf"{path}:7: malformed turtle: .*fix the syntax"):
        KnowledgeGraph.from_file(path)


def test_unterminated_string_line(tmp_path: Path) -> None:
    path = broken_copy(tmp_path, 'rdfs:label "Yelp (UCI)" ;', 'rdfs:label "Yelp (UCI) ;')
    line = SENTIMENT.splitlines().index('    rdfs:label "Yelp (UCI)" ;') + 1
    with pytest.raises(GraphParseError, match=rf"broken.ttl:{line}: malformed turtle"):
        KnowledgeGraph.from_file(path)


def test_malformed_ntriples_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.nt"
    path.write_text("<http://a> <http://b> <http://c> .\n<http://a> <http://b> .\n")
    with pytest.raises(GraphParseError, match=r"bad.nt:2: malformed nt"):
        KnowledgeGraph.from_file(path)


def test_missing_file_and_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(
        GraphError, match=r"graph file '.*nope.ttl' does not exist; check the path.*sentiment.ttl"
    ):
        KnowledgeGraph.from_file(tmp_path / "nope.ttl")
    odd = tmp_path / "graph.txt"
    odd.write_text(HEAD)
    with pytest.raises(
        GraphParseError, match=r"cannot tell the RDF format.*'.txt'.*format='turtle'"
    ):
        KnowledgeGraph.from_file(odd)
    assert len(KnowledgeGraph.from_file(odd, format="turtle")) == 0


# --- structural rules --------------------------------------------------------------------
def test_empty_graph() -> None:
    with pytest.raises(
        GraphValidationError, match=r"(?s)<string>: invalid knowledge graph.*the graph is empty"
    ):
        KnowledgeGraph.from_string("").validate()
    with pytest.raises(GraphValidationError, match=r"holds no kgkd nodes.*`:imdb a kgkd:Domain`"):
        KnowledgeGraph.from_string(HEAD + ':a rdfs:label "x" .').validate()


def test_teacher_with_unknown_domain(tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "kgkd:trainedOn :imdb ;", "kgkd:trainedOn :imbd ;")
    with pytest.raises(
        GraphValidationError,
        match=(
            r"(?s)broken.ttl: invalid .*teacher 'teacher_imdb' kgkd:trainedOn points to unknown domain 'imbd' "
            r"\(did you mean 'imdb'\?\); declare `:imbd a kgkd:Domain` or fix the name"
        ),
    ):
        KnowledgeGraph.from_file(path).validate()


@pytest.mark.parametrize(
    "weight, message",
    [
        (
            "1.4",
            r"node 'imdb' kgkd:similarTo → 'movie_reviews' has kgkd:weight 1.4, outside \[0, 1\]; use a number",
        ),
        (
            "-0.2",
            r"node 'imdb' kgkd:similarTo → 'movie_reviews' has kgkd:weight -0.2, outside \[0, 1\]",
        ),
        (
            '"high"',
            r"node 'imdb' kgkd:similarTo → 'movie_reviews' has kgkd:weight \"high\", which is not a number",
        ),
    ],
)
def test_bad_similarity_weight(tmp_path: Path, weight: str, message: str) -> None:
    path = broken_copy(
        tmp_path,
        "[ kgkd:target :movie_reviews ; kgkd:weight 0.8 ]",
        f"[ kgkd:target :movie_reviews ; kgkd:weight {weight} ]",
    )
    with pytest.raises(GraphValidationError, match=message):
        KnowledgeGraph.from_file(path).validate()


def test_subdomain_cycle_is_named(tmp_path: Path) -> None:
    path = broken_copy(
        tmp_path, "kgkd:avgLength 16.5 ;", "kgkd:avgLength 16.5 ;\n    kgkd:subDomainOf :amazon ;"
    )
    with pytest.raises(
        GraphValidationError,
        match=(
            r"kgkd:subDomainOf forms a cycle (amazon → product_reviews → amazon|product_reviews → amazon → "
            r"product_reviews); remove one"
        ),
    ):
        KnowledgeGraph.from_file(path).validate()


def test_duplicate_label_index() -> None:
    kg = KnowledgeGraph.from_string(
        HEAD
        + """
        :s a kgkd:LabelSet . :a a kgkd:Label ; kgkd:inLabelSet :s ; kgkd:labelIndex 0 .
        :b a kgkd:Label ; kgkd:inLabelSet :s ; kgkd:labelIndex 0 ."""
    )
    with pytest.raises(
        GraphValidationError, match=r"label set 's': labels a, b share kgkd:labelIndex 0"
    ):
        kg.validate()


# --- SHACL -------------------------------------------------------------------------------
def test_shacl_missing_architecture_names_node_and_path(tmp_path: Path) -> None:
    path = broken_copy(
        tmp_path,
        'kgkd:architecture "hf:minilm" ;\n    kgkd:trainedOn :imdb ;',
        "kgkd:trainedOn :imdb ;",
    )
    with pytest.raises(
        GraphValidationError,
        match=(
            r"node 'teacher_imdb' kgkd:architecture: a teacher needs one kgkd:architecture string"
        ),
    ):
        KnowledgeGraph.from_file(path).validate()


def test_shacl_bad_modality_and_class(tmp_path: Path) -> None:
    path = broken_copy(
        tmp_path,
        'rdfs:label "Yelp (UCI)" ;\n    rdfs:comment',
        'rdfs:label "Yelp (UCI)" ;\n    kgkd:hasTask :negative ;\n    rdfs:comment',
    )
    path.write_text(
        path.read_text().replace(
            'kgkd:modality "text" ;\n    kgkd:hasTask :sentiment_classification ;\n    kgkd:hasLabelSet :sentiment_binary ;\n    kgkd:genre "social media"',
            'kgkd:modality "audio" ;\n    kgkd:hasTask :sentiment_classification ;\n    kgkd:hasLabelSet :sentiment_binary ;\n    kgkd:genre "social media"',
        )
    )
    with pytest.raises(GraphValidationError) as info:
        KnowledgeGraph.from_file(path).validate()
    text = str(info.value)
    assert "2 problem(s)" in text
    assert (
        "node 'tweets' kgkd:modality (value \"audio\"): a domain needs exactly one kgkd:modality"
        in text
    )
    assert (
        "node 'yelp' kgkd:hasTask (value :negative): kgkd:hasTask must point to a node typed kgkd:Task"
        in text
    )


def test_missing_description_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    kg = KnowledgeGraph.from_string(
        HEAD + ':web a kgkd:Domain ; rdfs:label "Web" ; kgkd:modality "text" .'
    )
    with caplog.at_level(logging.WARNING, logger="kgkd"):
        kg.validate()
    assert "node 'web'" in caplog.text and "one-line description" in caplog.text


# --- security ------------------------------------------------------------------------------
def test_service_query_refused_before_any_io(no_network: list[str]) -> None:
    kg = KnowledgeGraph.from_file(graphs_dir() / "sentiment.ttl")
    with pytest.raises(
        GraphSecurityError, match="SERVICE clause: kgkd never sends queries to remote endpoints"
    ):
        kg.query("SELECT ?s WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }")
    with pytest.raises(GraphSecurityError, match="SERVICE"):
        kg.query(
            "SELECT ?s WHERE { ?s a kgkd:Domain . OPTIONAL { SERVICE SILENT <http://example.org/q> { ?s ?p ?o } } }"
        )
    with pytest.raises(GraphSecurityError, match="FROM / FROM NAMED"):
        kg.query("SELECT ?s FROM <http://example.org/other.ttl> WHERE { ?s ?p ?o }")
    assert no_network == []


def test_owl_imports_not_followed(no_network: list[str], caplog: pytest.LogCaptureFixture) -> None:
    text = (
        HEAD + "<http://ex.org/g> owl:imports <http://example.org/remote.ttl> .\n"
        ':web a kgkd:Domain ; rdfs:label "Web" ; rdfs:comment "Web text." ; kgkd:modality "text" .'
    )
    with caplog.at_level(logging.WARNING, logger="kgkd"):
        kg = KnowledgeGraph.from_string(text).validate()
    assert [d.name for d in kg.domains()] == ["web"]
    assert "ignoring owl:imports of http://example.org/remote.ttl" in caplog.text
    with pytest.raises(
        GraphSecurityError, match=r"owl:imports of http://example.org/remote.ttl would fetch"
    ):
        KnowledgeGraph.from_string(text, resolve_imports=True)
    assert no_network == []


def test_url_sources_and_remote_jsonld_context_refused(
    no_network: list[str], tmp_path: Path
) -> None:
    with pytest.raises(
        GraphSecurityError,
        match="refusing to read a graph from the URL 'https://example.org/g.ttl'",
    ):
        KnowledgeGraph.from_file("https://example.org/g.ttl")
    path = tmp_path / "g.jsonld"
    path.write_text('{"@context": "https://schema.org/", "@id": "http://ex.org/a", "name": "x"}')
    with pytest.raises(
        GraphSecurityError, match=r"g.jsonld: JSON-LD @context 'https://schema.org/' is a remote"
    ):
        KnowledgeGraph.from_file(path)
    assert no_network == []


def test_other_rdf_formats_load(tmp_path: Path) -> None:
    kg = KnowledgeGraph.from_file(graphs_dir() / "digits.ttl")
    for fmt, ext in (("xml", "rdf"), ("nt", "nt"), ("json-ld", "jsonld")):
        path = kg.serialize(tmp_path / f"digits.{ext}", format=fmt)
        again = KnowledgeGraph.from_file(path)
        assert len(again) == len(kg)
        assert [d.name for d in again.domains()] == [d.name for d in kg.domains()]
