"""Per-teacher temperature scaling, fitted where the teacher is a stranger.

A teacher is scored on domains it was *not* trained on (a held-out target never has
its own teacher, and in-domain outputs are over-confident in a way no target will
see), so each teacher's temperature is fitted on the labelled source domains outside
its own ``trainedOn`` set. Teachers only hand us probabilities, so scaling works on
log-probabilities: ``p_T ∝ p^(1/T)`` — the same as dividing the logits by ``T``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from kgkd.errors import SignalError
from kgkd.signals.mixture import label_nll
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

#: Temperatures searched (log-spaced) before a golden-section refinement.
T_MIN, T_MAX = 0.05, 20.0


def temper(probs: Tensor, temperature: float | Tensor) -> Tensor:
    """``probs ∝ p^(1/T)`` along the last axis (``temperature`` scalar or broadcastable)."""
    logp = probs.clamp_min(1e-12).log()
    t = torch.as_tensor(temperature, dtype=logp.dtype)
    return torch.softmax(logp / t, dim=-1) * (probs.sum(-1, keepdim=True) > 0)


def nll(probs: Tensor, labels: Tensor) -> float:
    """Mean negative log-likelihood of ``labels`` under ``probs`` [N, C]."""
    return float(label_nll(probs, labels))


def _tempered_nll(logp: Tensor, logp_y: Tensor, temperature: float) -> float:
    """NLL of tempered probabilities from precomputed log-probabilities (no softmax materialised)."""
    return float((torch.logsumexp(logp / temperature, dim=-1) - logp_y / temperature).mean())


def fit_temperature(probs: Tensor, labels: Tensor) -> float:
    """The temperature minimising the NLL of ``labels`` under tempered ``probs`` (1-D search on log T)."""
    if probs.size(0) == 0:
        raise SignalError("fit_temperature got no samples; calibration needs labelled data")
    logp = probs.float().clamp_min(1e-12).log()
    logp_y = logp.gather(1, labels.long().view(-1, 1)).squeeze(1)
    grid = torch.logspace(math.log10(T_MIN), math.log10(T_MAX), 17).tolist()
    scores = [_tempered_nll(logp, logp_y, t) for t in grid]
    k = min(range(len(grid)), key=scores.__getitem__)
    lo, hi = math.log(grid[max(k - 1, 0)]), math.log(grid[min(k + 1, len(grid) - 1)])
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(20):  # golden-section search on log T inside the bracketing grid cells
        a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
        if _tempered_nll(logp, logp_y, math.exp(a)) < _tempered_nll(logp, logp_y, math.exp(b)):
            hi = b
        else:
            lo = a
    return math.exp((lo + hi) / 2)


@dataclass
class TeacherCalibration:
    """One temperature per teacher, plus where it was fitted (for logs and reports)."""

    temperatures: dict[str, float] = field(default_factory=dict)
    fitted_on: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        probs: Mapping[str, Mapping[str, Tensor]],
        labels: Mapping[str, Tensor],
        teachers: Sequence[str],
        teacher_domains: Mapping[str, Sequence[str]],
        domains: Sequence[str],
    ) -> TeacherCalibration:
        """Fit each teacher on the labelled ``domains`` it was not trained on (T = 1 if there are none)."""
        out = cls()
        for t in teachers:
            own = set(teacher_domains.get(t, ()))
            usable = [d for d in domains if d not in own and d in labels and t in probs.get(d, {})]
            if not usable:
                out.temperatures[t], out.fitted_on[t] = 1.0, []
                continue
            p = torch.cat([probs[d][t].float() for d in usable])
            y = torch.cat([labels[d].long() for d in usable])
            out.temperatures[t] = fit_temperature(p, y)
            out.fitted_on[t] = list(usable)
        log.debug("teacher temperatures: %s", {t: round(v, 3) for t, v in out.temperatures.items()})
        return out

    def apply(self, probs: Tensor, teachers: Sequence[str]) -> Tensor:
        """Temper stacked probabilities ``[N, T, C]`` teacher by teacher (unknown teachers: T = 1)."""
        temps = torch.tensor([self.temperatures.get(t, 1.0) for t in teachers], dtype=torch.float32)
        return temper(probs.float(), temps.view(1, -1, 1))
