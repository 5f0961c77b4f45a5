"""Label coverage: graph-aware weightings give no weight to a teacher that cannot name a domain's labels.

Real graph (rdflib parsing of graphs/digits.ttl: a digit teacher, a clothing teacher, a
20-class amalgamated label set) and synthetic probabilities in that 20-class space, where
the clothing teacher is over-confident on digits — the failure of plain averaging that
the graph's label links prevent.
"""

from __future__ import annotations

import pytest
import torch

from kgkd.graph import KnowledgeGraph
from kgkd.paths import repo_root
from kgkd.signals import WEIGHTINGS
from kgkd.signals.coverage import LabelCoverage
from kgkd.signals.safe import domain_weights_from_choice

TEACHERS = ["teacher_mnist", "teacher_fashion"]
DOMAINS = ["mnist", "fashion_mnist", "uci_digits"]


@pytest.fixture(scope="module")
def kg() -> KnowledgeGraph:
    return KnowledgeGraph.from_file(repo_root() / "graphs" / "digits.ttl")


def test_coverage_reads_the_graphs_label_links(kg: KnowledgeGraph) -> None:
    cov = LabelCoverage(kg)
    assert cov.covers("teacher_mnist", "mnist") and cov.covers("teacher_mnist", "uci_digits")
    assert not cov.covers("teacher_fashion", "mnist") and not cov.covers("teacher_fashion", "uci_digits")
    assert cov.covers("teacher_fashion", "fashion_mnist") and not cov.covers("teacher_mnist", "fashion_mnist")
    assert cov.mask("uci_digits", TEACHERS).tolist() == [True, False]


def test_unknown_nodes_and_graphs_without_label_sets_count_as_covering(kg: KnowledgeGraph) -> None:
    cov = LabelCoverage(kg)
    assert cov.covers("teacher_fashion", "no_such_domain")
    assert cov.covers("no_such_teacher", "mnist")
    assert LabelCoverage(object()).mask("mnist", TEACHERS).tolist() == [True, True]


def test_restrict_zeroes_and_renormalises(kg: KnowledgeGraph) -> None:
    cov = LabelCoverage(kg)
    w = torch.tensor([[0.2, 0.8], [0.5, 0.5], [0.0, 1.0]])
    out = cov.restrict("uci_digits", TEACHERS, w)
    assert torch.allclose(out, torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]))
    assert cov.restrict("no_such_domain", TEACHERS, w) is w  # everything covers: untouched


def test_no_covering_teacher_leaves_weights_unrestricted(kg: KnowledgeGraph) -> None:
    w = torch.tensor([[0.3, 0.7]])
    out = LabelCoverage(kg).restrict("fashion_mnist", ["teacher_mnist", "teacher_mnist"], w)
    assert out is w


def amalgamation_problem(n: int = 200, seed: int = 0):
    """20-class probabilities: each teacher is mostly right on its own task and sure of itself off it."""
    gen = torch.Generator().manual_seed(seed)
    probs, labels = {}, {}
    for d in DOMAINS:
        clothing = d == "fashion_mnist"
        y = torch.randint(0, 10, (n,), generator=gen) + (10 if clothing else 0)
        by_t = {}
        for t, own_block in (("teacher_mnist", 0), ("teacher_fashion", 10)):
            logits = torch.full((n, 20), -30.0)
            logits[:, own_block:own_block + 10] = torch.randn(n, 10, generator=gen)
            on_task = (own_block == 10) == clothing
            if on_task:  # right 90 % of the time, moderately confident
                right = torch.rand(n, generator=gen) < 0.9
                guess = torch.where(right, y, own_block + (y - own_block + 1) % 10)
                logits[torch.arange(n), guess] += 4.0
            else:  # off task: very confident about a class of its own block
                logits[torch.arange(n), own_block + torch.randint(0, 10, (n,), generator=gen)] += 12.0
            by_t[t] = torch.softmax(logits, -1)
        probs[d], labels[d] = by_t, y
    return probs, labels


@pytest.mark.parametrize("method", ["graph_prior", "kg"])
def test_graph_weightings_route_each_domain_to_teachers_of_its_labels(kg: KnowledgeGraph, method: str) -> None:
    probs, labels = amalgamation_problem()
    sources = ["mnist", "fashion_mnist"]
    stacked = {d: torch.stack([probs[d][t] for t in TEACHERS], 1) for d in DOMAINS}

    def acc(mix: torch.Tensor, d: str) -> float:
        return float((mix.argmax(-1) == labels[d]).float().mean())

    uniform = WEIGHTINGS.get("uniform")().fit(kg, {d: probs[d] for d in sources}, labels, sources, TEACHERS)
    graph = WEIGHTINGS.get(method)(seed=0).fit(kg, {d: probs[d] for d in sources},
                                                {d: labels[d] for d in sources}, sources, TEACHERS)
    for d in DOMAINS:
        own = 1 if d == "fashion_mnist" else 0
        assert acc(uniform.mixture(d, stacked[d]), d) < 0.3  # the off-task teacher steals the argmax
        assert acc(graph.mixture(d, stacked[d]), d) == pytest.approx(acc(stacked[d][:, own], d))
        assert acc(graph.mixture(d, stacked[d]), d) > 0.85


def test_calibrated_uniform_does_not_read_the_graph(kg: KnowledgeGraph) -> None:
    probs, labels = amalgamation_problem()
    sources = ["mnist", "fashion_mnist"]
    cu = WEIGHTINGS.get("calibrated_uniform")().fit(kg, {d: probs[d] for d in sources}, labels, sources, TEACHERS)
    w = cu.sample_weights("uci_digits", torch.stack([probs["uci_digits"][t] for t in TEACHERS], 1))
    assert torch.allclose(w, torch.full_like(w, 0.5))


def test_saved_uniform_choice_is_restricted_per_domain(kg: KnowledgeGraph) -> None:
    choice = {"teachers": TEACHERS, "rule": {"rule": "uniform", "calibrate": False}, "per_domain": {},
              "sources": ["mnist", "fashion_mnist"], "teacher_domains": {"teacher_mnist": ["mnist"],
                                                                         "teacher_fashion": ["fashion_mnist"]}}
    w = domain_weights_from_choice(kg, choice, DOMAINS)
    assert w is not None
    assert torch.allclose(w, torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))


def test_kg_choice_records_which_teachers_the_graph_ruled_out(kg: KnowledgeGraph) -> None:
    probs, labels = amalgamation_problem()
    sources = ["mnist", "fashion_mnist"]
    method = WEIGHTINGS.get("kg")(seed=0).fit(kg, {d: probs[d] for d in sources}, labels, sources, TEACHERS)
    per_domain = method.to_json()["per_domain"]
    assert per_domain["uci_digits"]["no_label_coverage"] == ["teacher_fashion"]
    assert per_domain["fashion_mnist"]["no_label_coverage"] == ["teacher_mnist"]


def test_signals_show_names_the_teachers_the_graph_ruled_out(
    kg: KnowledgeGraph, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from kgkd.cli.signals import KG_CHOICE, _show_kg_choice

    probs, labels = amalgamation_problem()
    sources = ["mnist", "fashion_mnist"]
    method = WEIGHTINGS.get("kg")(seed=0).fit(kg, {d: probs[d] for d in sources}, labels, sources, TEACHERS)
    (tmp_path / KG_CHOICE).write_text(json.dumps(method.to_json()), encoding="utf-8")
    _show_kg_choice(kg, tmp_path, DOMAINS, 14)
    out = capsys.readouterr().out
    assert "uci_digits      uniform  (no weight: teacher_fashion cannot name its labels)" in out
    assert "fashion_mnist   uniform  (no weight: teacher_mnist cannot name its labels)" in out
