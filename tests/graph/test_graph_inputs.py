"""Graph inputs that used to pass or fail cryptically: IRIs rdflib cannot write, domain names the
data layer refuses, shared labels, a wrong extension, a directory, SPARQL updates, huge drawings."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from kgkd.cli import main
from kgkd.errors import GraphError, GraphParseError, GraphValidationError
from kgkd.graph import KnowledgeGraph
from kgkd.graph.draw import CANVAS, draw_graph
from kgkd.graph.validation import ascii_name, shacl_problems
from kgkd.paths import graphs_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from graph_gen import generated_turtle

SENTIMENT = (graphs_dir() / "sentiment.ttl").read_text(encoding="utf-8")
TINY = """@prefix : <http://ex.org/g#> .
@prefix kgkd: <https://w3id.org/kgkd/vocab#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
{node} a kgkd:Domain ; rdfs:label "{label}" ; rdfs:comment "one." ; kgkd:modality "text" .
:other a kgkd:Domain ; rdfs:label "Other" ; rdfs:comment "two." ; kgkd:modality "text" .
"""


def tiny(node: str = ":mine", label: str = "Mine") -> KnowledgeGraph:
    return KnowledgeGraph.from_string(TINY.format(node=node, label=label))


# --- graphs that validated and then crashed ---------------------------------------------
def test_iri_with_a_space_fails_validation_naming_the_node() -> None:
    kg = tiny("<http://ex.org/g#my domain>")
    with pytest.raises(GraphValidationError) as err:
        kg.validate()
    text = str(err.value)
    assert "node 'my domain': its IRI <http://ex.org/g#my domain> holds a space" in text
    assert "rename it, e.g. <http://ex.org/g#my_domain>" in text


@pytest.mark.parametrize("engine", ["shacl", "fast"])
def test_non_ascii_domain_name_refused_with_the_data_layers_rule(engine: str) -> None:
    from kgkd.data.user import check_domain_name
    from kgkd.errors import DataError

    with pytest.raises(DataError) as data_err:
        check_domain_name("café")
    with pytest.raises(GraphValidationError) as err:
        tiny(":café").validate(engine=engine)
    rule = "must start with a letter or '_' and hold only letters, digits and '_'"
    assert rule in str(data_err.value) and f"domain name 'café' {rule}" in str(err.value)
    assert "use e.g. 'cafe'" in str(err.value)  # an ASCII fix, never the same name back
    # the SHACL shapes hold the same rule (for pyshacl users outside kgkd), same on both engines
    violations, _ = shacl_problems(tiny(":café").graph, engine)
    assert violations == [
        ("node 'café' (value :café): a domain name (the IRI's local name) must start with a letter "
        "or '_' and hold only letters, digits and '_' (it is also the data name, e.g. "
        "data/text/<name>.jsonl.gz); rename the node, e.g. :my_domain")
    ]


def test_ascii_name_suggestions() -> None:
    assert ascii_name("café") == "cafe"
    assert ascii_name("my domain") == "my_domain"
    assert ascii_name("2020-news") == "d_2020_news"
    assert ascii_name("日本") == "my_domain"


def test_shared_domain_label_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kgkd"):
        tiny(label="Other").validate()
    assert "domains 'mine', 'other' share the rdfs:label \"Other\"; give each domain its own label" in caplog.text


# --- wrong format for the extension, a directory ---------------------------------------
def _rdfxml() -> str:
    return tiny().to_string("xml")


@pytest.mark.parametrize(
    ("name", "content", "looks", "fix"),
    [
        ("g.ttl", "rdfxml", "RDF/XML", "rename to .rdf or pass --format xml"),
        ("g.json", "rdfxml", "RDF/XML", "rename to .rdf or pass --format xml"),
        ("g.ttl", "jsonld", "JSON-LD", "rename to .jsonld or pass --format json-ld"),
        ("g.rdf", "turtle", "Turtle / N-Triples", "rename to .ttl or pass --format turtle"),
    ],
)
def test_wrong_extension_is_named(tmp_path: Path, name: str, content: str, looks: str, fix: str) -> None:
    text = {"rdfxml": _rdfxml(), "jsonld": tiny().to_string("json-ld"), "turtle": tiny().to_string()}[content]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(GraphParseError, match=f"this looks like {looks}.*; {fix}"):
        KnowledgeGraph.from_file(path)


def test_format_option_reads_a_misnamed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "g.ttl"
    path.write_text(_rdfxml(), encoding="utf-8")
    assert main(["graph", "validate", str(path), "--format", "xml"]) == 0
    assert "valid (2 domains" in capsys.readouterr().out
    assert main(["graph", "validate", str(path)]) == 2
    assert "this looks like RDF/XML (the extension '.ttl' says Turtle / N-Triples); rename to .rdf" in (
        capsys.readouterr().err
    )


def test_explicit_wrong_format_hints_at_the_right_one(tmp_path: Path) -> None:
    path = tmp_path / "g.ttl"
    path.write_text(_rdfxml(), encoding="utf-8")
    with pytest.raises(GraphParseError, match="malformed turtle.*this looks like RDF/XML: pass --format xml"):
        KnowledgeGraph.from_file(path, format="turtle")


def test_directory_as_graph_path(tmp_path: Path) -> None:
    (tmp_path / "a.ttl").write_text(SENTIMENT, encoding="utf-8")
    with pytest.raises(GraphError, match=f"graph path '{tmp_path}' is a directory, not a graph file "
                       r"\(graph files in it: a.ttl\); pass one file, e.g. "):  # fmt: skip
        KnowledgeGraph.from_file(tmp_path)


# --- SPARQL updates ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "keyword"),
    [
        ("INSERT DATA { <http://x/a> <http://x/b> <http://x/c> }", "INSERT"),
        ("PREFIX kgkd: <https://w3id.org/kgkd/vocab#>\nDELETE WHERE { ?d kgkd:modality ?m }", "DELETE"),
        ("LOAD <http://example.org/other.ttl>", "LOAD"),
        ("CLEAR DEFAULT", "CLEAR"),
        ("# a comment\ndrop all", "DROP"),
    ],
)
def test_sparql_updates_are_refused_as_read_only(query: str, keyword: str) -> None:
    kg = tiny()
    before = len(kg)
    with pytest.raises(GraphError, match=f"read-only: updates are not allowed \\(this is a SPARQL {keyword}\\)"):
        kg.query(query)
    assert len(kg) == before


def test_select_still_runs_and_malformed_is_still_malformed() -> None:
    kg = tiny()
    rows = kg.query("SELECT ?d WHERE { ?d a kgkd:Domain } ORDER BY ?d")
    assert [r["d"].rsplit("#", 1)[1] for r in rows] == ["mine", "other"]  # type: ignore[index]
    with pytest.raises(GraphError, match="malformed SPARQL query"):
        kg.query("SELECT ?d WHERE { ?d a kgkd:Domain ")


# --- bounded drawing ------------------------------------------------------------------------
def test_large_graph_draws_a_bounded_summary(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from PIL import Image

    kg = KnowledgeGraph.from_string(generated_turtle(400), source="generated_400.ttl")
    with caplog.at_level(logging.INFO, logger="kgkd"):
        path = draw_graph(kg, tmp_path / "big.png", dpi=100)
    with Image.open(path) as im:
        assert im.size == (int(CANVAS[0] * 100), int(CANVAS[1] * 100))
    assert "summary view: 444 nodes are more than the 80 drawn one by one" in caplog.text
    assert "400 domains shown as 8 groups by genre" in caplog.text
    assert "left out: 388 individual domains, 40 individual teachers" in caplog.text


def test_small_graph_keeps_every_node_on_the_same_canvas(tmp_path: Path) -> None:
    from PIL import Image

    kg = KnowledgeGraph.from_string(SENTIMENT)
    with Image.open(draw_graph(kg, tmp_path / "small.png", dpi=100)) as im:
        assert im.size == (int(CANVAS[0] * 100), int(CANVAS[1] * 100))


def test_show_lists_at_most_rows_and_draws_with_max_nodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "g.ttl"
    path.write_text(generated_turtle(120), encoding="utf-8")
    out = tmp_path / "g.png"
    assert main(["graph", "show", str(path), "--rows", "3", "--out", str(out), "--max-nodes", "50"]) == 0
    text = capsys.readouterr().out
    assert "... 117 more domains (--rows 0 shows all" in text and out.is_file()
