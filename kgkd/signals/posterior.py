"""``p(source domain | x)``: the domain classifier behind the distribution-weighted rule.

Mansour, Mohri & Rostamizadeh (2008) and Cortes et al. (2021) weight each source's
predictor by how likely the sample is to come from that source. Here a multinomial
logistic regression on frozen sample features (MiniLM sentence embeddings for text,
pixels for images) is trained on the source domains' *unlabelled* samples only — the
class labels are never read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from kgkd.errors import SignalError


class DomainPosterior:
    """Logistic regression ``features → source domain``; :meth:`predict` gives ``[N, D]``."""

    def __init__(self, c: float = 1.0, max_iter: int = 500, seed: int = 0) -> None:
        self.c, self.max_iter, self.seed = c, max_iter, seed
        self.domains: list[str] = []

    def fit(self, features: Mapping[str, Tensor], domains: Sequence[str]) -> DomainPosterior:
        """Fit on ``features[d]`` ``[N_d, F]`` of each of ``domains`` (at least two)."""
        from sklearn.linear_model import LogisticRegression

        missing = [d for d in domains if d not in features or features[d].numel() == 0]
        if missing:
            raise SignalError(
                f"the domain posterior needs sample features of every source domain; none for {missing} "
                "(pass features= with the sources' unlabelled samples)"
            )
        self.domains = list(domains)
        if len(self.domains) == 1:
            return self
        x = torch.cat([features[d].float() for d in domains]).numpy()
        y = np.concatenate([np.full(features[d].size(0), i) for i, d in enumerate(domains)])
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        self.model = LogisticRegression(C=self.c, max_iter=self.max_iter, random_state=self.seed)
        self.model.fit((x - self.mean) / self.std, y)
        return self

    def predict(self, features: Tensor) -> Tensor:
        """``p(domain | x)`` ``[N, D]`` in :attr:`domains` order."""
        if not self.domains:
            raise SignalError("DomainPosterior.predict called before fit")
        n = features.size(0)
        if len(self.domains) == 1:
            return torch.ones(n, 1)
        x = (features.float().numpy() - self.mean) / self.std
        return torch.from_numpy(self.model.predict_proba(x)).float()
