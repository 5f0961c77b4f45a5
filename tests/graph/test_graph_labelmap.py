"""``LabelMap.to_student`` / ``logits_to_student``: the one move of teacher probabilities into
the student's label space (matrix product, then renormalisation over the covered labels),
on label maps resolved from real graphs, and its consumers agreeing with it."""

from __future__ import annotations

import pytest
import torch

from kgkd.distill.evaluation import ensemble_probs
from kgkd.distill.losses.functional import teacher_probs
from kgkd.errors import LabelMapError
from kgkd.graph import KnowledgeGraph
from kgkd.paths import graphs_dir

FINE_TO_COARSE = """@prefix : <http://ex.org/g#> . @prefix kgkd: <https://w3id.org/kgkd/vocab#> .
:fine a kgkd:LabelSet . :coarse a kgkd:LabelSet .
:very_bad a kgkd:Label ; kgkd:inLabelSet :fine ; kgkd:labelIndex 0 ; kgkd:broaderLabel :neg .
:bad a kgkd:Label ; kgkd:inLabelSet :fine ; kgkd:labelIndex 1 ; kgkd:broaderLabel :neg .
:good a kgkd:Label ; kgkd:inLabelSet :fine ; kgkd:labelIndex 2 ; kgkd:equivalentLabel :pos .
:meh a kgkd:Label ; kgkd:inLabelSet :fine ; kgkd:labelIndex 3 .
:neg a kgkd:Label ; kgkd:inLabelSet :coarse ; kgkd:labelIndex 0 .
:pos a kgkd:Label ; kgkd:inLabelSet :coarse ; kgkd:labelIndex 1 .
:t a kgkd:Teacher ; kgkd:predicts :fine ."""


@pytest.fixture(scope="module")
def digits() -> KnowledgeGraph:
    return KnowledgeGraph.from_file(graphs_dir() / "digits.ttl")


def _manual(probs: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    moved = probs @ matrix
    return moved / moved.sum(-1, keepdim=True)


def test_to_student_smaller_label_set_from_shipped_graph(digits: KnowledgeGraph) -> None:
    """The 10-label clothing teacher in the 20-label amalgamated space: mass lands on labels 10..19."""
    lmap = digits.label_map("teacher_fashion", "digits_clothing20")
    probs = torch.softmax(torch.randn(6, 10, generator=torch.Generator().manual_seed(0)), dim=-1)
    out = lmap.to_student(probs)
    assert out.shape == (6, 20)
    torch.testing.assert_close(out, _manual(probs, lmap.matrix()))
    torch.testing.assert_close(out.sum(-1), torch.ones(6))
    assert torch.all(out[:, :10] == 0)
    torch.testing.assert_close(out[:, 10:], probs)


def test_to_student_many_to_one_drops_and_renormalises() -> None:
    """Fine → coarse through broader links; the unmapped label's mass is dropped, then rows sum to 1."""
    lmap = KnowledgeGraph.from_string(FINE_TO_COARSE).label_map("t", "coarse")
    assert lmap.mapping == (0, 0, 1, -1)
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.0, 0.0, 0.5], [0.0, 0.0, 1.0, 0.0]])
    out = lmap.to_student(probs)
    torch.testing.assert_close(out, _manual(probs, lmap.matrix()))
    torch.testing.assert_close(out, torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]]))
    torch.testing.assert_close(out.sum(-1), torch.ones(3))


def test_logits_to_student_is_tempered_softmax_then_to_student() -> None:
    lmap = KnowledgeGraph.from_string(FINE_TO_COARSE).label_map("t", "coarse")
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    for temperature in (1.0, 3.0):
        expected = _manual(torch.softmax(logits / temperature, dim=-1), lmap.matrix())
        torch.testing.assert_close(lmap.logits_to_student(logits, temperature), expected)


def test_to_student_wrong_width_names_teacher() -> None:
    lmap = KnowledgeGraph.from_string(FINE_TO_COARSE).label_map("t", "coarse")
    with pytest.raises(LabelMapError, match=r"teacher 't' lists 4 teacher labels but got probabilities over 3"):
        lmap.to_student(torch.full((2, 3), 1 / 3))


def test_losses_and_ensemble_evaluation_use_the_same_move(digits: KnowledgeGraph) -> None:
    """The loss target and the evaluated ensemble both renormalise: ensemble rows sum to 1."""
    maps = [digits.label_map(t, "digits_clothing20") for t in ("teacher_mnist", "teacher_fashion")]
    g = torch.Generator().manual_seed(2)
    logits = [torch.randn(4, 10, generator=g), torch.randn(4, 10, generator=g)]
    p, covered = teacher_probs(logits[1], 20, 2.0, maps[1])
    torch.testing.assert_close(p, maps[1].logits_to_student(logits[1], 2.0))
    assert covered.tolist() == [False] * 10 + [True] * 10
    weights = torch.tensor([[0.25, 0.75]]).expand(4, 2)
    mix = ensemble_probs(logits, weights, maps)
    expected = 0.25 * maps[0].logits_to_student(logits[0]) + 0.75 * maps[1].logits_to_student(logits[1])
    torch.testing.assert_close(mix, expected)
    torch.testing.assert_close(mix.sum(-1), torch.ones(4))
