"""``KGWeighting``: the fitted KG signals as a :class:`~kgkd.distill.weighting.TeacherWeighting`.

The engine only sees tensors: a ``[D, T]`` table of graph-derived teacher weights
(row ``d`` = the domain with id ``d`` in the dataset) and, when a per-sample gate
was fitted, the domain embeddings it is conditioned on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from kgkd.distill.weighting import DomainTableWeighting
from kgkd.errors import SignalError
from kgkd.signals.heads import SampleGate, sample_evidence
from kgkd.signals.shrinkage import check_lambda, shrink


class KGWeighting(DomainTableWeighting):
    """Domain rows of the KG weight table, optionally refined per sample by a :class:`SampleGate`.

    Args:
        table: ``[D, T]`` weights from :meth:`FittedSignals.weights` (rows sum to 1).
        domain_embeddings: ``[D, H]`` KG embeddings (needed with ``gate``).
        gate: a fitted gate; per-sample evidence is read from the teachers' logits.
        label_maps: one :class:`~kgkd.labels.LabelMap` per teacher, so teachers with
            different label sets are compared in the student's label space.
        shrinkage: λ of :mod:`kgkd.signals.shrinkage`; the output (after the gate) is
            ``(1 − λ)·w + λ/T``. ``table`` is then the *raw* graph table.
    """

    def __init__(
        self,
        table: Tensor,
        domain_embeddings: Tensor | None = None,
        gate: SampleGate | None = None,
        label_maps: Sequence[Any] | None = None,
        domain_names: Sequence[str] | None = None,
        shrinkage: float = 0.0,
    ) -> None:
        super().__init__(table, domain_names, normalize=True)
        self.shrinkage = check_lambda(shrinkage)
        if gate is not None and domain_embeddings is None:
            raise SignalError("KGWeighting with a gate needs domain_embeddings [D, H]; use FittedSignals.as_weighting")
        self.gate = gate
        if gate is not None:
            gate.requires_grad_(False)
            self.register_buffer("domain_embeddings", torch.as_tensor(domain_embeddings, dtype=torch.float32))
        self.label_maps = list(label_maps) if label_maps is not None else None

    def _student_probs(self, teacher_logits: Sequence[Tensor]) -> Tensor:
        probs = []
        for i, logits in enumerate(teacher_logits):
            if self.label_maps is not None:
                probs.append(self.label_maps[i].logits_to_student(logits))
            else:
                probs.append(torch.softmax(logits.float(), dim=-1))
        widths = {p.size(-1) for p in probs}
        if len(widths) != 1:
            raise SignalError(
                f"teachers predict different label counts {sorted(widths)}; pass label_maps to KGWeighting "
                "(kg.label_map(teacher, student_label_set)) so their evidence can be compared"
            )
        return torch.stack(probs, dim=1)

    def forward(self, domain: Tensor, teacher_logits: Sequence[Tensor] = ()) -> Tensor:
        w = super().forward(domain, teacher_logits)
        if self.gate is not None and teacher_logits:
            evidence = sample_evidence(self._student_probs(teacher_logits))
            with torch.no_grad():
                w = self.gate(w, evidence, self.domain_embeddings.to(w.device)[domain.long()])
        return shrink(w, self.shrinkage)
