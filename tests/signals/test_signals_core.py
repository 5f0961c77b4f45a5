"""kgkd.signals building blocks on the real shipped graphs: encoders, heads, reliability, weighting."""

from __future__ import annotations

import pytest
import torch

from kgkd.errors import ConfigError, SignalError
from kgkd.graph import KnowledgeGraph
from kgkd.paths import graphs_dir
from kgkd.signals import (
    FiLMProjector,
    NodeFeaturizer,
    SampleGate,
    build_encoder,
    measure_reliability,
    signal_graph_from_kg,
)
from kgkd.signals.weighting import KGWeighting


@pytest.mark.parametrize("graph", ["digits.ttl", "sentiment.ttl"])
@pytest.mark.parametrize("encoder", ["sage", "gat", "hgt", "mlp"])
def test_encoders_run_on_real_graph(graph: str, encoder: str) -> None:
    g = signal_graph_from_kg(KnowledgeGraph.from_file(graphs_dir() / graph))
    feats = NodeFeaturizer(use_text=False).fit(g.records)
    x = feats.transform(g.records)
    enc = build_encoder(encoder, {t: v.size(1) for t, v in x.items()}, list(g.edge_index), hidden=16)
    h = enc(x, g.edge_index, g.edge_weight)
    assert set(h) == set(x)
    for t, v in h.items():
        assert v.shape == (x[t].size(0), 16) and torch.isfinite(v).all()
    h["domain"].sum().backward()  # gradients reach the input projections
    assert enc.input["domain"].weight.grad is not None


def test_message_passing_uses_neighbours() -> None:
    """Changing a teacher's features changes its domain's embedding (sage) but not without edges (mlp)."""
    g = signal_graph_from_kg(KnowledgeGraph.from_file(graphs_dir() / "digits.ttl"))
    feats = NodeFeaturizer(use_text=False).fit(g.records)
    x = feats.transform(g.records)
    dims = {t: v.size(1) for t, v in x.items()}
    x2 = {t: v.clone() for t, v in x.items()}
    x2["teacher"] = x2["teacher"] + 5.0
    for name, should_change in (("sage", True), ("mlp", False)):
        torch.manual_seed(0)
        enc = build_encoder(name, dims, list(g.edge_index), hidden=16, dropout=0.0).eval()
        a = enc(x, g.edge_index, g.edge_weight)["domain"]
        b = enc(x2, g.edge_index, g.edge_weight)["domain"]
        assert (not torch.allclose(a, b)) == should_change, name


def test_unknown_encoder_did_you_mean() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'sage'"):
        build_encoder("sagee", {"domain": 3}, [])


def test_measure_reliability_matches_hand_computation() -> None:
    y = torch.tensor([0, 1, 1, 0])
    good = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    bad = good.flip(-1)
    table = measure_reliability({"d": {"good": good, "bad": bad}}, {"d": y}, ["good", "bad"])
    assert table.get("accuracy", "d", "good") == 1.0 and table.get("accuracy", "d", "bad") == 0.0
    expected_nll = -torch.log(torch.tensor([0.9, 0.8, 0.7, 0.6])).mean().item()
    assert table.get("nll", "d", "good") == pytest.approx(expected_nll, abs=1e-5)
    assert table.to_json()["teachers"] == ["good", "bad"]
    with pytest.raises(SignalError, match="3 labels but 4 teacher predictions"):
        measure_reliability({"d": {"good": good}}, {"d": y[:3]})


def test_film_projector_any_shape_and_condition() -> None:
    proj = FiLMProjector((8, 4, 4), (16,), cond_dim=5)
    x, c = torch.randn(3, 8, 4, 4), torch.randn(5)
    out = proj(x, c)
    assert out.shape == (3, 16)
    torch.nn.init.normal_(proj.film.weight)
    assert not torch.allclose(proj(x, c), proj(x, -c))  # the KG condition modulates the projection
    with pytest.raises(SignalError, match=r"shape \[B, 8, 4, 4\]"):
        proj(torch.randn(3, 8, 2, 2), c)


def test_kg_weighting_rows_sum_to_one_with_gate() -> None:
    table = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    gate = SampleGate(4)
    torch.nn.init.normal_(gate.net[-1].weight)
    w = KGWeighting(table, torch.randn(2, 4), gate)
    out = w(torch.tensor([0, 1, 1]), [torch.randn(3, 10), torch.randn(3, 10)])
    assert out.shape == (3, 2) and torch.allclose(out.sum(1), torch.ones(3))
    assert not torch.allclose(out, table[[0, 1, 1]])  # the gate moved the weights per sample
    with pytest.raises(SignalError, match="different label counts"):
        w(torch.tensor([0]), [torch.randn(1, 10), torch.randn(1, 3)])
