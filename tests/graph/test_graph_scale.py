"""Graphs at scale: the fast shapes engine agrees with pyshacl, the fast parser with rdflib,
drawing stays bounded, and the benchmark's entry point runs at smoke scale."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from rdflib import BNode, Graph

from kgkd.graph import KnowledgeGraph
from kgkd.graph.draw import CANVAS
from kgkd.graph.fast_parse import fast_parse
from kgkd.graph.validation import pick_engine, shacl_problems
from kgkd.paths import graphs_dir

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from graph_gen import generated_turtle

SENTIMENT = (graphs_dir() / "sentiment.ttl").read_text(encoding="utf-8")
DIGITS = (graphs_dir() / "digits.ttl").read_text(encoding="utf-8")
NYT = ":nyt_editorials a kgkd:Domain ;"
TEACHER = ':teacher_nyt a kgkd:Teacher ;\n    rdfs:label "NYT editorials teacher" ;'
LABEL = ":negative a kgkd:Label ;"

#: (name, old text, new text): each variant of sentiment.ttl breaks or bends one shape.
VARIANTS = [
    ("modality not in list", NYT, NYT + ' kgkd:modality "txt" ;'),
    ("task of wrong class", NYT, NYT + " kgkd:hasTask :negative ;"),
    ("label set is a literal", NYT, NYT + ' kgkd:hasLabelSet "binary" ;'),
    ("plain IRI similarTo", NYT, NYT + " kgkd:similarTo :yelp ;"),
    ("two targets", NYT, NYT + " kgkd:similarTo [ kgkd:target :yelp , :imdb ; kgkd:weight 0.5 ] ;"),
    ("target not a domain", NYT, NYT + " kgkd:similarTo [ kgkd:target :negative ; kgkd:weight 0.5 ] ;"),
    ("weight string", NYT, NYT + ' kgkd:similarTo [ kgkd:target :yelp ; kgkd:weight "high" ] ;'),
    ("weight above 1", NYT, NYT + " kgkd:similarTo [ kgkd:target :yelp ; kgkd:weight 1.5 ] ;"),
    ("weight negative double", NYT, NYT + " kgkd:similarTo [ kgkd:target :yelp ; kgkd:weight -2e-1 ] ;"),
    ("weight boolean", NYT, NYT + " kgkd:similarTo [ kgkd:target :yelp ; kgkd:weight true ] ;"),
    ("weight missing", NYT, NYT + " kgkd:similarTo [ kgkd:target :yelp ] ;"),
    ("two weights", NYT, NYT + " kgkd:similarTo [ kgkd:target :yelp ; kgkd:weight 0.2 , 0.3 ] ;"),
    ("resolution string", NYT, NYT + ' kgkd:resolution "28" ;'),
    ("resolution zero", NYT, NYT + " kgkd:resolution 0 ;"),
    ("resolution ill-typed", NYT, NYT + ' kgkd:resolution "abc"^^xsd:integer ;'),
    ("channels decimal", NYT, NYT + " kgkd:channels 1.5 ;"),
    ("isPhoto twice", NYT, NYT + " kgkd:isPhoto true , false ;"),
    ("isPhoto string", NYT, NYT + ' kgkd:isPhoto "yes" ;'),
    ("avgLength string", NYT, NYT + ' kgkd:avgLength "long" ;'),
    ("avgLength double", NYT, NYT + " kgkd:avgLength 1.5e1 ;"),
    ("subDomainOf a label", NYT, NYT + " kgkd:subDomainOf :positive ;"),
    ("sameSource literal", NYT, NYT + ' kgkd:sameSource "VADER" ;'),
    ("no label, no description", ':nyt_editorials a kgkd:Domain ;\n    rdfs:label "NYT editorial snippets (VADER)" ;\n    rdfs:comment', ":nyt_editorials a kgkd:Domain ;\n    rdfs:seeAlso"),
    ("non-ASCII domain name", ":nyt_editorials a kgkd:Domain", ":café a kgkd:Domain ; rdfs:label \"x\" ; kgkd:modality \"text\" .\n:nyt_editorials a kgkd:Domain"),
    ("domain via subclass", NYT, ':Special rdfs:subClassOf kgkd:Domain . :odd a :Special ; kgkd:modality "sound" .\n' + NYT),
    ("teacher architecture number", TEACHER, TEACHER + " kgkd:architecture 5 ;"),
    ("teacher architecture lang", TEACHER, TEACHER + ' kgkd:architecture "cnn"@en ;'),
    ("teacher predicts a domain", TEACHER, TEACHER + " kgkd:predicts :yelp ;"),
    ("teacher trainedOn literal", TEACHER, TEACHER + ' kgkd:trainedOn "nyt" ;'),
    ("teacher without label", TEACHER, ":teacher_nyt a kgkd:Teacher ;"),
    ("label index negative", LABEL, LABEL + " kgkd:labelIndex -1 ;"),
    ("label in two sets", LABEL, LABEL + " kgkd:inLabelSet :sentiment_classification ;"),
    ("label equivalent to domain", LABEL, LABEL + " kgkd:equivalentLabel :yelp ;"),
    ("task label set twice", ":sentiment_classification a kgkd:Task ;", ":sentiment_classification a kgkd:Task ; kgkd:hasLabelSet :negative ;"),
    ("student", LABEL, ":stu a kgkd:Student ; kgkd:predicts :yelp , :sentiment_binary .\n" + LABEL),
]


def _named(graph: Graph) -> set[tuple[object, ...]]:
    """The triples with each blank node replaced by its outgoing triples (the generated graphs'
    blank nodes are weighted links, each told apart by what they hold and who points to them)."""

    def name(term: object) -> object:
        if not isinstance(term, BNode):
            return term
        inner = tuple(sorted((str(p), str(o), type(o).__name__) for p, o in graph.predicate_objects(term)))
        return (inner, tuple(sorted(str(s) for s in graph.subjects(None, term))))

    return {(name(s), p, name(o)) for s, p, o in graph}


def _variant(old: str, new: str) -> Graph:
    assert old in SENTIMENT, old
    return KnowledgeGraph.from_string(SENTIMENT.replace(old, new, 1)).graph


@pytest.mark.parametrize("text", [SENTIMENT, DIGITS], ids=["sentiment", "digits"])
def test_fast_engine_agrees_with_pyshacl_on_shipped_graphs(text: str) -> None:
    graph = KnowledgeGraph.from_string(text).graph
    assert shacl_problems(graph, "fast") == shacl_problems(graph, "shacl") == ([], [])


def test_fast_engine_agrees_with_pyshacl_on_broken_variants() -> None:
    disagreements = []
    for name, old, new in VARIANTS:
        graph = _variant(old, new)
        fast, reference = shacl_problems(graph, "fast"), shacl_problems(graph, "shacl")
        assert fast[0] or fast[1] or name == "avgLength double", f"variant '{name}' broke nothing"
        if fast != reference:
            disagreements.append((name, fast, reference))
    assert not disagreements, disagreements


def test_auto_engine_switches_on_size() -> None:
    small = KnowledgeGraph.from_string(SENTIMENT).graph
    big = KnowledgeGraph.from_string(generated_turtle(400)).graph
    assert pick_engine(small) == "shacl" and pick_engine(big) == "fast"
    assert pick_engine(small, "fast") == "fast" and pick_engine(big, "shacl") == "shacl"
    with pytest.raises(ValueError, match="engine must be one of auto, shacl, fast"):
        pick_engine(small, "quick")


def test_fast_parser_gives_the_graph_rdflib_gives() -> None:
    text = generated_turtle(400)
    fast = fast_parse(text, "turtle")
    assert fast is not None
    reference = Graph().parse(data=text, format="turtle")
    assert len(fast) == len(reference) and _named(fast) == _named(reference)
    assert dict(fast.namespaces())["kgkd"] == dict(reference.namespaces())["kgkd"]


@pytest.mark.parametrize(
    "tail",
    ['\n:x :p "v"^^xsd:string .\n', '\n:x :p "v"@en-GB .\n', "\n<not an iri> :p 1 .\n"],
    ids=["xsd-string", "upper-case-lang", "bad-iri"],
)
def test_fast_parser_leaves_what_it_would_read_differently_to_rdflib(tail: str) -> None:
    assert fast_parse(generated_turtle(400) + tail, "turtle") is None


def test_fast_parsed_graph_works_everywhere_a_graph_does(tmp_path: Path) -> None:
    path = tmp_path / "g.ttl"
    path.write_text(generated_turtle(400), encoding="utf-8")
    kg = KnowledgeGraph.from_file(path)
    n = len(kg)
    assert type(kg.graph.store).__name__ == "CountedSimpleMemory"  # the fast path was taken
    kg.validate(engine="fast")
    rows = kg.query("SELECT (COUNT(?d) AS ?n) WHERE { ?d a kgkd:Domain }")
    assert rows == [{"n": 400}]
    assert kg.to_networkx().number_of_nodes() == 444 == sum(
        v for k, v in kg.summary().items() if k not in ("relations", "triples")
    )
    from rdflib import Literal, URIRef

    kg.add_statements([(URIRef("https://w3id.org/kgkd/graphs/generated#d00000"), URIRef("http://x/p"), Literal(1))])
    assert len(kg) == n + 1  # the remembered count is forgotten on change
    again = KnowledgeGraph.from_string(kg.to_string(), source="round trip")
    assert len(again) == n + 1


def test_graph_scale_benchmark_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import graph_scale

    # results go to tmp_path, never to benchmarks/results/ (patch the helpers graph_scale uses)
    monkeypatch.setattr(sys.modules[graph_scale.finish.__module__], "RESULTS_DIR", tmp_path)
    payload = graph_scale.main(["--scale", "smoke", "--only", "validate", "--only", "draw"])
    written = json.loads((tmp_path / "graph_scale.json").read_text())
    assert [(r["domains"], r["step"], r["rc"]) for r in written["rows"]] == [
        (60, "validate", 0),
        (60, "draw", 0),
    ]
    assert payload["rows"][1]["png_pixels"] == [int(CANVAS[0] * 130), int(CANVAS[1] * 130)]
    assert all(r["peak_rss_mb"] > 0 and r["wall_s"] > 0 for r in written["rows"])
