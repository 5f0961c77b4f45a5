"""A teacher that is a linear probe on frozen MiniLM-L6 sentence embeddings.

All probe teachers share one frozen encoder, so N domain teachers cost one encoder pass
over the data plus N tiny heads: the practical way to have one MiniLM-family teacher
per domain for many domains of long documents on a CPU. The head is scikit-learn's
multinomial logistic regression, stored as plain tensors (safetensors-friendly).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from kgkd.errors import DataError, ModelError
from kgkd.models.base import ModelOutput, Teacher

ARCHITECTURE = "minilm_probe"


class EmbeddingProbeTeacher(Teacher):
    """Logits ``[B, C]`` from ``batch["embedding"]`` ``[B, 384]`` (see :mod:`kgkd.signals.sample_features`)."""

    def __init__(self, name: str, label_names: Sequence[str], weight: Tensor, bias: Tensor) -> None:
        super().__init__(name, label_names, (), modality="text")
        if weight.dim() != 2 or weight.size(0) != len(label_names) or bias.shape != (len(label_names),):
            raise ModelError(f"teacher '{name}': weight {tuple(weight.shape)} / bias {tuple(bias.shape)} "
                             f"do not fit {len(label_names)} labels")
        self.weight = nn.Parameter(weight.float())
        self.bias = nn.Parameter(bias.float())

    def forward(self, batch: dict[str, Tensor]) -> ModelOutput:
        if "embedding" not in batch:
            raise ModelError(f"teacher '{self.name}' needs batch['embedding'] (MiniLM sentence embeddings); "
                             f"got keys {sorted(batch)}")
        return ModelOutput(batch["embedding"].float() @ self.weight.T + self.bias, {})


def fit_embedding_probe(embeddings: Tensor, labels: Sequence[int], label_names: Sequence[str], *, name: str,
                        C: float = 1.0, seed: int = 0) -> EmbeddingProbeTeacher:
    """Fit the probe head on ``embeddings`` ``[N, E]`` with class ``labels``."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels, dtype=np.int64)
    present = sorted(set(y.tolist()))
    if present != list(range(len(label_names))):
        raise DataError(f"probe teacher '{name}': training labels {present} do not cover the task's "
                        f"{len(label_names)} labels {list(label_names)}; use more training data")
    model = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(embeddings.float().numpy(), y)
    coef, intercept = torch.from_numpy(model.coef_).float(), torch.from_numpy(model.intercept_).float()
    if coef.size(0) == 1:  # binary: one row z → logits (-z/2, z/2) so softmax equals predict_proba
        coef, intercept = torch.cat([-coef / 2, coef / 2]), torch.cat([-intercept / 2, intercept / 2])
    return EmbeddingProbeTeacher(name, label_names, coef, intercept)
