"""The NLL of label probabilities and of a weighted teacher mixture, shared by every signals module.

It sits below :mod:`kgkd.signals.fit`, :mod:`kgkd.signals.shrinkage`, the CV and the
calibration so that they all import it one way, at module top level (``shrinkage`` used to
reach back into ``fit`` from inside a function for ``ensemble_nll``).
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["ensemble_nll", "label_nll"]


def label_nll(probs: Tensor, labels: Tensor) -> Tensor:
    """Mean ``−log p[label]`` over probability rows ``[N, C]``; p is clamped at 1e-12 (27.6 nats, not inf)."""
    return -probs.gather(1, labels.long().view(-1, 1)).clamp_min(1e-12).log().mean()


def ensemble_nll(weights: Tensor, probs: Tensor, labels: Tensor) -> Tensor:
    """Mean NLL of the mixture ``Σ_t w[.., t] p[:, t]``; ``weights`` is [T] or [N, T], ``probs`` [N, T, C]."""
    w = weights if weights.dim() == 2 else weights.unsqueeze(0)
    return label_nll((w.unsqueeze(-1) * probs).sum(1), labels)
