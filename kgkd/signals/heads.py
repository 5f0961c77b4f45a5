"""Heads turning node embeddings into teacher weights, per-sample gates and alignment.

* :class:`TeacherWeightHead` — ``score(d, t)`` from the domain and teacher
  embeddings and relation-path features of the pair, softmax over teachers at a
  temperature → ``w(d, t)``; a second output regresses the teacher's measured
  accuracy on the domain (auxiliary target that keeps scores calibrated).
* :class:`SampleGate` — refines ``w(d, ·)`` per sample from label-free evidence
  (teacher confidence, entropy, agreement with the others) conditioned on the
  domain embedding.
* :class:`AlignmentHead` — per-teacher feature-alignment weights ``α(d, t)``.
* :class:`FiLMProjector` — projects student features of any shape into one
  teacher's feature space, modulated (FiLM) by a KG condition vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from kgkd.errors import SignalError


class TeacherWeightHead(nn.Module):
    """Scores every (domain, teacher) pair; ``weights`` is a softmax over teachers.

    The pair representation is ``[h_d, h_t, h_d ⊙ h_t, path]`` through a 2-layer MLP.
    """

    def __init__(self, hidden: int, path_dim: int, mlp_hidden: int = 64, temperature: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise SignalError(f"teacher-weight temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.pair = nn.Sequential(nn.Linear(3 * hidden + path_dim, mlp_hidden), nn.ReLU())
        self.score_out = nn.Linear(mlp_hidden, 1)
        self.reliability_out = nn.Linear(mlp_hidden, 1)

    def pair_repr(self, h_domain: Tensor, h_teacher: Tensor, path: Tensor) -> Tensor:
        d, t = h_domain.size(0), h_teacher.size(0)
        hd = h_domain.unsqueeze(1).expand(d, t, -1)
        ht = h_teacher.unsqueeze(0).expand(d, t, -1)
        return self.pair(torch.cat([hd, ht, hd * ht, path], dim=-1))

    def forward(self, h_domain: Tensor, h_teacher: Tensor, path: Tensor) -> tuple[Tensor, Tensor]:
        """Scores [D, T] and predicted accuracies [D, T] (in 0..1)."""
        z = self.pair_repr(h_domain, h_teacher, path)
        return self.score_out(z).squeeze(-1), torch.sigmoid(self.reliability_out(z).squeeze(-1))

    def weights(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        """Softmax over teachers at ``temperature``; ``mask`` [D,T] False excludes a teacher."""
        s = scores / self.temperature
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        return torch.softmax(s, dim=-1)


def sample_evidence(probs: Tensor) -> Tensor:
    """Label-free per-sample evidence [B, T, 3] from teacher probabilities [B, T, C].

    Columns: confidence (max prob), normalised entropy (0..1), agreement (the
    probability the teacher gives to the unweighted ensemble's predicted label).
    """
    if probs.dim() != 3:
        raise SignalError(f"teacher probabilities must be [batch, teachers, classes], got shape {tuple(probs.shape)}")
    p = probs.clamp_min(1e-12)
    conf = p.max(-1).values
    ent = -(p * p.log()).sum(-1) / math.log(max(p.size(-1), 2))
    vote = probs.mean(1).argmax(-1)  # [B]
    agree = probs.gather(2, vote.view(-1, 1, 1).expand(-1, probs.size(1), 1)).squeeze(-1)
    return torch.stack([conf, ent, agree], dim=-1)


class SampleGate(nn.Module):
    """Per-sample correction of the domain's teacher weights.

    ``w_b = softmax(log w(d_b, ·) + g([evidence_bt, h_{d_b}]))``; the last layer
    starts at zero so an untrained gate returns the domain weights unchanged.
    """

    def __init__(self, cond_dim: int, hidden: int = 32, evidence_dim: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(evidence_dim + cond_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, domain_weights: Tensor, evidence: Tensor, domain_cond: Tensor) -> Tensor:
        """``domain_weights`` [B,T], ``evidence`` [B,T,E], ``domain_cond`` [B,H] → weights [B,T]."""
        b, t, _ = evidence.shape
        cond = domain_cond.unsqueeze(1).expand(b, t, -1)
        delta = self.net(torch.cat([evidence, cond], dim=-1)).squeeze(-1)
        return torch.softmax(domain_weights.clamp_min(1e-12).log() + delta, dim=-1)


class AlignmentHead(nn.Module):
    """Per-teacher feature-alignment weights ``α(d, t)`` from the pair scores.

    Feature (hint) alignment is only worth paying for toward teachers that are
    reliable on the domain, but it is less sensitive than logit mixing, so α uses
    the same scores at a softer temperature and drops teachers below ``min_weight``
    (renormalising the rest).
    """

    def __init__(self, temperature: float = 2.0, min_weight: float = 0.05) -> None:
        super().__init__()
        if temperature <= 0:
            raise SignalError(f"alignment temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.min_weight = min_weight

    def forward(self, scores: Tensor) -> Tensor:
        a = torch.softmax(scores / self.temperature, dim=-1)
        keep = a >= self.min_weight
        keep = keep | (a == a.max(-1, keepdim=True).values)  # never drop every teacher
        a = a * keep
        return a / a.sum(-1, keepdim=True)


class FiLMProjector(nn.Module):
    """Student features [B, *student_shape] → teacher space [B, *teacher_shape], FiLM-conditioned.

    ``z = W flatten(x)``; ``y = (1 + γ(c)) ⊙ z + β(c)`` where ``c`` is a KG
    condition (e.g. the domain embedding, [cond_dim] or [B, cond_dim]). γ and β
    start at zero, so before training it is a plain linear projector. Works for
    any feature shape (tokens, channels×H×W, vectors).
    """

    def __init__(self, student_shape: Sequence[int], teacher_shape: Sequence[int], cond_dim: int) -> None:
        super().__init__()
        self.student_shape = tuple(int(s) for s in student_shape)
        self.teacher_shape = tuple(int(s) for s in teacher_shape)
        n_in, n_out = math.prod(self.student_shape), math.prod(self.teacher_shape)
        self.proj = nn.Linear(n_in, n_out)
        self.film = nn.Linear(cond_dim, 2 * n_out)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.student_shape:
            raise SignalError(
                f"FiLMProjector expects student features of shape [B, {', '.join(map(str, self.student_shape))}], "
                f"got {list(x.shape)}; build it with the student's feature shape"
            )
        z = self.proj(x.flatten(1))
        if cond.dim() == 1:
            cond = cond.unsqueeze(0).expand(x.size(0), -1)
        gamma, beta = self.film(cond).chunk(2, dim=-1)
        return ((1 + gamma) * z + beta).view(x.size(0), *self.teacher_shape)
