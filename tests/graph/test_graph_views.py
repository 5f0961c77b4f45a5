"""RDF ↔ networkx ↔ PyG: counts, attributes, weights and stable index maps survive the trips."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
from torch_geometric.nn import SAGEConv, to_hetero

from kgkd.errors import GraphError, GraphValidationError
from kgkd.graph import KnowledgeGraph
from kgkd.paths import graphs_dir


@pytest.fixture(scope="module", params=["sentiment", "digits"])
def kg(request: pytest.FixtureRequest) -> KnowledgeGraph:
    return KnowledgeGraph.from_file(graphs_dir() / f"{request.param}.ttl")


def test_networkx_view_nodes_and_edges(kg: KnowledgeGraph) -> None:
    g = kg.to_networkx()
    assert isinstance(g, nx.MultiDiGraph)
    counts = kg.summary()
    assert g.number_of_nodes() == sum(
        counts[k] for k in ("domains", "tasks", "labels", "label_sets", "teachers")
    )
    assert g.number_of_edges() == counts["relations"]
    for _, attrs in g.nodes(data=True):
        assert {"type", "name", "label", "description", "iri"} <= set(attrs)
    for _, _, attrs in g.edges(data=True):
        assert attrs["relation"] and 0.0 <= attrs["weight"] <= 1.0
    teacher = next(t for t in kg.teachers())
    assert g.has_edge(teacher.name, teacher.trained_on[0], key="trainedOn")


def test_similarity_weight_in_networkx() -> None:
    g = KnowledgeGraph.from_file(graphs_dir() / "sentiment.ttl").to_networkx()
    assert g.edges["imdb", "movie_reviews", "similarTo"]["weight"] == pytest.approx(0.8)
    assert g.edges["teacher_imdb", "imdb", "trainedOn"]["weight"] == 1.0
    assert (
        g.nodes["imdb"]["avgLength"] == pytest.approx(14.3) and g.nodes["imdb"]["isReview"] is True
    )


def test_rdf_networkx_rdf_round_trip(kg: KnowledgeGraph) -> None:
    g = kg.to_networkx()
    back = KnowledgeGraph.from_networkx(g)
    back.validate()
    g2 = back.to_networkx()
    assert sorted(g2.nodes) == sorted(g.nodes)
    assert sorted(g2.edges(keys=True)) == sorted(g.edges(keys=True))
    for u, v, k, w in g.edges(keys=True, data="weight"):
        assert g2.edges[u, v, k]["weight"] == pytest.approx(w)
    for n, attrs in g.nodes(data=True):
        assert g2.nodes[n].keys() == attrs.keys()
        for key, value in attrs.items():
            assert g2.nodes[n][key] == (
                pytest.approx(value) if isinstance(value, float) else value
            ), (n, key)
    assert back.domains() == kg.domains()
    assert back.teachers() == kg.teachers()
    assert back.label_sets() == kg.label_sets()


def test_pyg_view_counts_and_reverse_edges(kg: KnowledgeGraph) -> None:
    data, maps = kg.to_pyg()
    g = kg.to_networkx()
    assert set(data.node_types) == {"domain", "task", "label", "label_set", "teacher"}
    for node_type in data.node_types:
        assert data[node_type].num_nodes == maps.num_nodes(node_type) == data[node_type].x.shape[0]
        assert len(maps.feature_names[node_type]) == data[node_type].x.shape[1]
        assert maps.iris[node_type] == sorted(maps.iris[node_type])
    forward = [et for et in data.edge_types if not et[1].startswith("rev_")]
    assert sum(data[et].edge_index.shape[1] for et in forward) == g.number_of_edges()
    for src, rel, dst in forward:
        fwd, rev = data[src, rel, dst], data[dst, f"rev_{rel}", src]
        assert torch.equal(fwd.edge_index.flip(0), rev.edge_index)
        assert fwd.edge_weight.shape == (fwd.edge_index.shape[1],)
        assert torch.equal(fwd.edge_weight, rev.edge_weight)
        assert (
            int(fwd.edge_index[0].max()) < data[src].num_nodes
            and int(fwd.edge_index[1].max()) < data[dst].num_nodes
        )
    data.validate(raise_on_error=True)


def test_pyg_index_maps_point_at_right_edges() -> None:
    kg = KnowledgeGraph.from_file(graphs_dir() / "sentiment.ttl")
    data, maps = kg.to_pyg()
    et = ("teacher", "trainedOn", "domain")
    pairs = {
        (maps.name_of("teacher", int(s)), maps.name_of("domain", int(d)))
        for s, d in data[et].edge_index.t()
    }
    assert pairs == {(t.name, t.trained_on[0]) for t in kg.teachers()}
    sim = data["domain", "similarTo", "domain"]
    i, j = maps.index_of("domain", "imdb"), maps.index_of("domain", "movie_reviews")
    col = ((sim.edge_index[0] == i) & (sim.edge_index[1] == j)).nonzero().item()
    assert sim.edge_weight[col].item() == pytest.approx(0.8)
    assert maps["domain"]["amazon"] == 0  # sorted by IRI
    with pytest.raises(GraphError, match="no domain named 'imbd'.*did you mean 'imdb'"):
        maps.index_of("domain", "imbd")


def test_pyg_view_runs_through_a_hetero_gnn() -> None:
    """The view is directly usable by a PyG heterogeneous GNN (full batch)."""
    data, maps = KnowledgeGraph.from_file(graphs_dir() / "digits.ttl").to_pyg()

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = SAGEConv((-1, -1), 8)

        def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
            return self.conv(x, edge_index)

    torch.manual_seed(0)
    model = to_hetero(Net(), data.metadata(), aggr="sum")
    out = model(data.x_dict, data.edge_index_dict)
    assert out["domain"].shape == (maps.num_nodes("domain"), 8)
    assert torch.isfinite(out["teacher"]).all()


def test_from_networkx_errors() -> None:
    g = nx.MultiDiGraph()
    g.add_node("x")
    with pytest.raises(
        GraphValidationError, match=r"networkx node 'x' has type None; set g.nodes\['x'\]\['type'\]"
    ):
        KnowledgeGraph.from_networkx(g)
    g = nx.MultiDiGraph()
    g.add_node("a", type="domain", modality="text")
    g.add_node("b", type="domain", modality="text")
    g.add_edge("a", "b", relation="sharesGenre", weight=0.5)
    with pytest.raises(GraphValidationError, match="only similarTo links carry weights"):
        KnowledgeGraph.from_networkx(g)


def test_handmade_networkx_graph_becomes_valid_rdf(tmp_path) -> None:
    g = nx.MultiDiGraph()
    g.add_node("web", type="domain", modality="text", description="Web comments.")
    g.add_node("forum", type="domain", modality="text", description="Forum posts.")
    g.add_node("teacher_web", type="teacher", architecture="hf:minilm", description="Web teacher.")
    g.add_edge("teacher_web", "web", relation="trainedOn")
    g.add_edge("forum", "web", relation="similarTo", weight=0.7)
    kg = KnowledgeGraph.from_networkx(g).validate()
    path = kg.serialize(tmp_path / "mine.ttl")
    again = KnowledgeGraph.from_file(path).validate()
    assert again.teacher("teacher_web").trained_on == ["web"]
    assert again.to_networkx().edges["forum", "web", "similarTo"]["weight"] == pytest.approx(0.7)
