"""KnowledgeGraph on the shipped example graphs: loading, SHACL validation, accessors,
SPARQL and label maps (real rdflib parsing, real pyshacl)."""

from __future__ import annotations

import pytest

from kgkd.errors import GraphError, LabelMapError
from kgkd.graph import KnowledgeGraph
from kgkd.paths import graphs_dir

SENTIMENT_DOMAINS = [
    "amazon",
    "books",
    "dvd",
    "electronics",
    "imdb",
    "kitchen",
    "movie_reviews",
    "nyt_editorials",
    "product_reviews",
    "tweets",
    "yelp",
]


@pytest.fixture(scope="module")
def sentiment() -> KnowledgeGraph:
    return KnowledgeGraph.from_file(graphs_dir() / "sentiment.ttl")


@pytest.fixture(scope="module")
def digits() -> KnowledgeGraph:
    return KnowledgeGraph.from_file(graphs_dir() / "digits.ttl")


def test_example_graphs_validate(sentiment: KnowledgeGraph, digits: KnowledgeGraph) -> None:
    assert sentiment.validate() is sentiment
    assert digits.validate() is digits


def test_sentiment_accessors_match_data_names(sentiment: KnowledgeGraph) -> None:
    assert [d.name for d in sentiment.domains()] == SENTIMENT_DOMAINS
    assert {d.modality for d in sentiment.domains()} == {"text"}
    assert all(d.description and d.label != d.name for d in sentiment.domains())
    teachers = {t.name: t for t in sentiment.teachers()}
    # one teacher per text domain (teacher_nyt is the nyt_editorials one)
    assert set(teachers) == {f"teacher_{d}" for d in SENTIMENT_DOMAINS if d != "nyt_editorials"} | {"teacher_nyt"}
    assert teachers["teacher_nyt"].trained_on == ["nyt_editorials"]
    assert {t.architecture for t in teachers.values()} == {"hf:minilm"}
    imdb = sentiment.domain("imdb")
    assert imdb.task == "sentiment_classification" and imdb.label_set == "sentiment_binary"
    assert imdb.parents == ["movie_reviews"]
    assert imdb.attributes["avgLength"] == pytest.approx(14.3)
    assert imdb.text_attributes["genre"] == "movie reviews"
    assert sentiment.label_set("sentiment_binary").labels == ["negative", "positive"]
    assert [t.name for t in sentiment.tasks()] == ["sentiment_classification"]


def test_digits_attributes(digits: KnowledgeGraph) -> None:
    res = {
        d.name: (d.attributes["resolution"], d.attributes["channels"], d.attributes["isPhoto"])
        for d in digits.domains()
    }
    assert res == {
        "mnist": (28, 1, 0),
        "usps": (16, 1, 0),
        "svhn": (32, 3, 1),
        "uci_digits": (8, 1, 0),
        "fashion_mnist": (28, 1, 0),
    }
    assert digits.teacher("teacher_fashion").label_set == "clothing10"
    assert digits.teacher("teacher_svhn").architecture == "ccexam:svhn"
    sets = {s.name: s.labels for s in digits.label_sets()}
    assert sets["digits10"] == [f"digit_{i}" for i in range(10)]
    assert sets["clothing10"][0] == "t_shirt" and sets["clothing10"][-1] == "ankle_boot"
    assert len(sets["digits_clothing20"]) == 20


def test_unknown_name_suggests(sentiment: KnowledgeGraph) -> None:
    with pytest.raises(
        GraphError, match=r"no teacher named 'teacher_imbd'.*Did you mean 'teacher_imdb'"
    ):
        sentiment.teacher("teacher_imbd")


def test_sparql_select_and_ask(sentiment: KnowledgeGraph) -> None:
    rows = sentiment.query(
        "SELECT ?name ?w WHERE { :imdb kgkd:similarTo [ kgkd:target ?t ; kgkd:weight ?w ] . "
        "BIND(STRAFTER(STR(?t), '#') AS ?name) } ORDER BY DESC(?w)"
    )
    assert rows == [
        {"name": "movie_reviews", "w": pytest.approx(0.8)},
        {"name": "yelp", "w": pytest.approx(0.5)},
    ]
    assert sentiment.query("ASK { ?t kgkd:trainedOn :tweets }") is True
    assert sentiment.query("ASK { ?t kgkd:trainedOn :mnist }") is False


def test_sparql_syntax_error_names_position(sentiment: KnowledgeGraph) -> None:
    with pytest.raises(GraphError, match=r"malformed SPARQL query at line 1, column \d+"):
        sentiment.query("SELECT ?x WHERE { ?x ?y }")


def test_label_map_identity(sentiment: KnowledgeGraph) -> None:
    lm = sentiment.label_map("teacher_imdb", "sentiment_binary")
    assert lm.mapping == (0, 1)
    assert lm.teacher_labels == ("negative", "positive") and lm.teacher == "teacher_imdb"


def test_label_map_into_amalgamated_space(digits: KnowledgeGraph) -> None:
    fashion = digits.label_map("teacher_fashion", "digits_clothing20")
    assert fashion.mapping == tuple(range(10, 20))
    mnist = digits.label_map("teacher_mnist", "digits_clothing20")
    assert mnist.mapping == tuple(range(10))
    m = fashion.matrix()
    assert m.shape == (10, 20) and m.sum().item() == 10 and m[0, 10] == 1


def test_label_map_unresolvable_names_labels(digits: KnowledgeGraph) -> None:
    with pytest.raises(
        LabelMapError, match=r"teacher_fashion.*'digits10'.*unmapped labels: t_shirt, trouser"
    ):
        digits.label_map("teacher_fashion", "digits10")


def test_label_map_through_broader_links() -> None:
    kg = KnowledgeGraph.from_string(
        """@prefix : <http://ex.org/g#> . @prefix kgkd: <https://w3id.org/kgkd/vocab#> .
        :fine a kgkd:LabelSet . :coarse a kgkd:LabelSet .
        :very_bad a kgkd:Label ; kgkd:inLabelSet :fine ; kgkd:labelIndex 0 ; kgkd:broaderLabel :neg .
        :bad a kgkd:Label ; kgkd:inLabelSet :fine ; kgkd:labelIndex 1 ; kgkd:broaderLabel :neg .
        :good a kgkd:Label ; kgkd:inLabelSet :fine ; kgkd:labelIndex 2 ; kgkd:equivalentLabel :pos_alias .
        :meh a kgkd:Label ; kgkd:inLabelSet :fine ; kgkd:labelIndex 3 .
        :pos_alias a kgkd:Label ; kgkd:broaderLabel :pos .
        :neg a kgkd:Label ; kgkd:inLabelSet :coarse ; kgkd:labelIndex 0 .
        :pos a kgkd:Label ; kgkd:inLabelSet :coarse ; kgkd:labelIndex 1 .
        :t a kgkd:Teacher ; kgkd:predicts :fine ."""
    )
    assert kg.label_map("t", "coarse").mapping == (0, 0, 1, -1)
