"""A tiny, deterministic distillation problem shared by the engine tests and their subprocess workers.

Real engine, real losses, real ``ModuleTeacher``s — only the data and the
networks are small: 2-D points in two domains, 3 classes, two fixed linear
teachers, a one-hidden-layer student without dropout or batch norm (so a
2-rank DDP run and a single-process run of the same global batch do the same
math).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from kgkd.labels import LabelMap
from kgkd.models.base import ModelOutput
from kgkd.models.module_teacher import ModuleTeacher

LABELS = ("a", "b", "c")


class PointDataset(Dataset):
    """``n`` points in 4-D, label = argmax of a fixed linear map; domain = sign of the first coordinate."""

    def __init__(self, n: int = 48, seed: int = 0, unlabelled_from: int | None = None) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=g)
        w = torch.tensor([[1.0, -1.0, 0.5], [0.5, 1.0, -1.0], [-1.0, 0.3, 1.0], [0.2, 0.2, 0.2]])
        self.y = (self.x @ w).argmax(dim=1)
        if unlabelled_from is not None:
            self.y[unlabelled_from:] = -1
        self.d = (self.x[:, 0] > 0).long()
        self.domain_names = ["left", "right"]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": self.x[i], "labels": int(self.y[i]), "domain": int(self.d[i]), "index": i}


class TinyStudent(nn.Module):
    """4 → 16 → 3 MLP returning ``ModelOutput`` with a ``hidden`` feature (optional dropout)."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(dropout))
        self.head = nn.Linear(16, 3)

    def forward(self, batch: dict[str, Tensor]) -> ModelOutput:
        h = self.body(batch["x"])
        return ModelOutput(self.head(h), {"hidden": h})


def _points(batch: dict[str, Tensor]) -> Tensor:
    return batch["x"]


def make_teachers(seed: int = 1) -> list[ModuleTeacher]:
    """Two fixed random 4 → 6 → 3 teachers over the same 3 labels, exposing feature ``hidden``."""
    g = torch.Generator().manual_seed(seed)
    teachers = []
    for i in range(2):
        net = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        teachers.append(
            ModuleTeacher(net, name=f"teacher_{i}", label_names=LABELS, feature_layers={"hidden": "1"}, preprocess=_points)
        )
    return teachers


def label_maps(teachers: list[ModuleTeacher]) -> list[LabelMap]:
    return [LabelMap.identity(LABELS, teacher=t.name) for t in teachers]


def make_loss(feature_weight: float = 0.1) -> nn.Module:
    """α·multi-teacher KD + (1−α)·CE, plus a feature term whose projectors are trained parameters."""
    from kgkd.distill.losses import build_loss

    return build_loss(
        "weighted_sum",
        losses={"kd": "combined", "feat": {"name": "feature", "pairs": ["hidden"]}},
        weights={"feat": feature_weight},
    )


def noisy_collate(items: list[dict[str, Any]]) -> dict[str, Tensor]:
    """Default collate plus Gaussian input noise drawn from the global torch RNG (augmentation)."""
    from torch.utils.data import default_collate

    batch = default_collate(items)
    batch["x"] = batch["x"] + 0.05 * torch.randn_like(batch["x"])
    return batch
