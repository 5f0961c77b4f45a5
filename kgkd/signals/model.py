"""The trainable signal model: encoder + teacher-weight head (+ optional per-sample gate)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from kgkd.signals.encoders import EdgeType, build_encoder
from kgkd.signals.heads import SampleGate, TeacherWeightHead


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block.

    Knowledge graphs are tiny (tens of nodes): every op is microseconds of work,
    and on a busy machine the thread-pool barriers of many tiny ops cost 10-100x
    the work itself. One thread is the fast setting here.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class SignalModelConfig:
    """Everything needed to rebuild a :class:`SignalModel` (saved as JSON next to the weights)."""

    encoder: str = "sage"
    hidden: int = 64
    num_layers: int = 2
    dropout: float = 0.1
    mlp_hidden: int = 64
    temperature: float = 1.0
    gate: bool = False
    in_dims: dict[str, int] = field(default_factory=dict)
    edge_types: list[list[str]] = field(default_factory=list)
    path_dim: int = 7

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SignalModelConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


class SignalModel(nn.Module):
    """Graph encoder → (domain, teacher) scores and predicted reliabilities."""

    def __init__(self, config: SignalModelConfig) -> None:
        super().__init__()
        self.config = config
        edge_types: list[EdgeType] = [tuple(e) for e in config.edge_types]  # type: ignore[misc]
        self.encoder = build_encoder(
            config.encoder, config.in_dims, edge_types, config.hidden, config.num_layers, config.dropout
        )
        self.head = TeacherWeightHead(config.hidden, config.path_dim, config.mlp_hidden, config.temperature)
        self.gate = SampleGate(config.hidden) if config.gate else None

    def forward(
        self,
        x_dict: Mapping[str, Tensor],
        edge_index_dict: Mapping[EdgeType, Tensor],
        edge_weight_dict: Mapping[EdgeType, Tensor],
        path: Tensor,
        domain_idx: Tensor,
        teacher_idx: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Scores [D,T], predicted accuracies [D,T] and domain embeddings [D,H]."""
        h = self.encoder(x_dict, edge_index_dict, edge_weight_dict)
        h_d, h_t = h["domain"][domain_idx], h["teacher"][teacher_idx]
        scores, rel = self.head(h_d, h_t, path)
        return scores, rel, h_d
