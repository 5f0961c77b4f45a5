"""GNN encoders over the knowledge graph's ``HeteroData`` view, picked by name.

Every encoder maps ``(x_dict, edge_index_dict, edge_weight_dict)`` to node
embeddings ``h_dict`` of width ``hidden`` for every node type. They run
full-batch (graphs are small) and need no pyg-lib / torch-scatter.

* ``sage`` — heterogeneous GraphSAGE with an edge-weighted mean aggregation;
* ``gat``  — heterogeneous GATv1 attention with the edge weight as edge feature;
* ``hgt``  — Heterogeneous Graph Transformer (type-aware attention; ignores weights);
* ``mlp``  — no message passing (the *no-graph* ablation: each node sees only its own features).

The encoders are inductive: parameters are per node/edge *type*, never per node,
so nodes that first appear in a new Turtle file are embedded with no retraining.
Edge types unknown to a fitted encoder are ignored (with a debug log).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, HeteroConv, HGTConv, MessagePassing
from torch_geometric.utils import scatter

from kgkd.utils.logging import get_logger
from kgkd.utils.registry import Registry

log = get_logger(__name__)

EdgeType = tuple[str, str, str]

#: Encoders by name: ``ENCODERS.get("sage")(in_dims, edge_types, hidden=...)``.
ENCODERS: Registry[type[SignalEncoder]] = Registry("signal encoder")


class WeightedSAGEConv(MessagePassing):
    """GraphSAGE layer whose neighbour mean is weighted by ``edge_weight``.

    ``out_i = W_root x_i + W_neigh · Σ_j w_ij x_j / Σ_j w_ij`` (bipartite-aware).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(aggr="add")
        self.lin_neigh = nn.Linear(in_channels, out_channels)
        self.lin_root = nn.Linear(in_channels, out_channels, bias=False)

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
    ) -> Tensor:
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        w = edge_weight if edge_weight is not None else x_src.new_ones(edge_index.size(1))
        denom = scatter(w, edge_index[1], dim=0, dim_size=x_dst.size(0), reduce="sum")
        norm = w / denom[edge_index[1]].clamp_min(1e-12)
        agg = self.propagate(edge_index, x=(x_src, x_dst), norm=norm, size=(x_src.size(0), x_dst.size(0)))
        return self.lin_neigh(agg) + self.lin_root(x_dst)

    def message(self, x_j: Tensor, norm: Tensor) -> Tensor:
        return norm.unsqueeze(-1) * x_j


class SignalEncoder(nn.Module):
    """Base: per-type input projection, ``num_layers`` residual message-passing rounds.

    Subclasses implement :meth:`propagate_layer` for one round.
    """

    uses_edge_weight: bool = True

    def __init__(
        self,
        in_dims: Mapping[str, int],
        edge_types: Sequence[EdgeType],
        hidden: int = 64,
        num_layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.node_types = sorted(in_dims)
        self.edge_types = [tuple(e) for e in edge_types if e[0] in in_dims and e[2] in in_dims]
        self.hidden = hidden
        self.num_layers = num_layers
        self.input = nn.ModuleDict({t: nn.Linear(d, hidden) for t, d in in_dims.items()})
        self.norms = nn.ModuleList(
            nn.ModuleDict({t: nn.LayerNorm(hidden) for t in self.node_types}) for _ in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(self.build_layer() for _ in range(num_layers))

    def build_layer(self) -> nn.Module:
        raise NotImplementedError

    def propagate_layer(
        self,
        layer: nn.Module,
        h: dict[str, Tensor],
        edge_index: dict[EdgeType, Tensor],
        edge_weight: dict[EdgeType, Tensor],
    ) -> dict[str, Tensor]:
        raise NotImplementedError

    def forward(
        self,
        x_dict: Mapping[str, Tensor],
        edge_index_dict: Mapping[EdgeType, Tensor],
        edge_weight_dict: Mapping[EdgeType, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """Node embeddings ``{node_type: Tensor[N, hidden]}``."""
        known = set(self.edge_types)
        edge_index = {e: v for e, v in edge_index_dict.items() if tuple(e) in known and v.numel() > 0}
        dropped = [e for e in edge_index_dict if tuple(e) not in known]
        if dropped:
            log.debug("encoder ignores edge types it was not built with: %s", dropped)
        edge_weight: dict[EdgeType, Tensor] = {}
        for e, ei in edge_index.items():
            w = (edge_weight_dict or {}).get(e)
            edge_weight[e] = w.float() if w is not None else torch.ones(ei.size(1), device=ei.device)
        h = {t: torch.relu(self.input[t](x)) for t, x in x_dict.items() if t in self.input}
        for layer, norms in zip(self.layers, self.norms):
            msg = self.propagate_layer(layer, h, edge_index, edge_weight) if edge_index else {}
            h = {
                t: norms[t](v + self.dropout(torch.relu(msg[t])) if msg.get(t) is not None else v)
                for t, v in h.items()
            }
        return h


@ENCODERS.register("sage")
class SAGEEncoder(SignalEncoder):
    """Heterogeneous GraphSAGE (edge-weighted mean), one weight set per relation."""

    def build_layer(self) -> nn.Module:
        return HeteroConv({e: WeightedSAGEConv(self.hidden, self.hidden) for e in self.edge_types}, aggr="mean")

    def propagate_layer(self, layer, h, edge_index, edge_weight):  # type: ignore[override]
        return layer(h, edge_index, edge_weight_dict=edge_weight)


@ENCODERS.register("gat")
class GATEncoder(SignalEncoder):
    """Heterogeneous graph attention; the relation's weight enters as a 1-d edge feature."""

    def build_layer(self) -> nn.Module:
        convs = {
            e: GATConv((self.hidden, self.hidden), self.hidden, heads=2, concat=False, edge_dim=1, add_self_loops=False)
            for e in self.edge_types
        }
        return HeteroConv(convs, aggr="mean")

    def propagate_layer(self, layer, h, edge_index, edge_weight):  # type: ignore[override]
        return layer(h, edge_index, edge_attr_dict={e: w.unsqueeze(-1) for e, w in edge_weight.items()})


@ENCODERS.register("hgt")
class HGTEncoder(SignalEncoder):
    """Heterogeneous Graph Transformer (type-specific attention); edge weights are not used."""

    uses_edge_weight = False

    def build_layer(self) -> nn.Module:
        return HGTConv(self.hidden, self.hidden, (self.node_types, self.edge_types), heads=2)

    def propagate_layer(self, layer, h, edge_index, edge_weight):  # type: ignore[override]
        full = {t: h[t] if t in h else torch.zeros(0, self.hidden) for t in self.node_types}
        out = layer(full, edge_index)
        return {t: v for t, v in out.items() if t in h}


@ENCODERS.register("mlp")
class MLPEncoder(SignalEncoder):
    """No message passing: the *no-graph* ablation (node features through an MLP only)."""

    uses_edge_weight = False

    def build_layer(self) -> nn.Module:
        return nn.ModuleDict({t: nn.Linear(self.hidden, self.hidden) for t in self.node_types})

    def propagate_layer(self, layer, h, edge_index, edge_weight):  # type: ignore[override]
        return {t: layer[t](v) for t, v in h.items()}

    def forward(self, x_dict, edge_index_dict, edge_weight_dict=None):  # type: ignore[override]
        h = {t: torch.relu(self.input[t](x)) for t, x in x_dict.items() if t in self.input}
        for layer, norms in zip(self.layers, self.norms):
            h = {t: norms[t](v + self.dropout(torch.relu(layer[t](v)))) for t, v in h.items()}
        return h


def build_encoder(
    name: str,
    in_dims: Mapping[str, int],
    edge_types: Sequence[EdgeType],
    hidden: int = 64,
    num_layers: int = 2,
    dropout: float = 0.1,
) -> SignalEncoder:
    """Instantiate the encoder registered as ``name`` (did-you-mean error otherwise)."""
    return ENCODERS.get(name)(in_dims, edge_types, hidden=hidden, num_layers=num_layers, dropout=dropout)
