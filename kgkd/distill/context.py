"""``LossContext``: everything a distillation loss may read for one batch.

The engine fills one context per batch and hands it to the loss; losses never
see datasets, graphs or teachers' modules, only tensors. Keeping the inputs in
one dataclass lets composite losses (weighted sums, per-task routing) pass the
same inputs on, or a row subset of them, without knowing what each part reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from kgkd.errors import DistillError
from kgkd.labels import LabelMap


def _select_output(output: Any, rows: Tensor) -> Any:
    """Row-select a ``ModelOutput``-like object (``.logits`` + ``.features``) along the batch."""
    logits = output.logits[rows] if output.logits is not None else None
    features = {name: value[rows] for name, value in (output.features or {}).items()}
    if dataclasses.is_dataclass(output):
        return dataclasses.replace(output, logits=logits, features=features)
    return type(output)(logits, features)


@dataclass
class LossContext:
    """Inputs of a distillation loss for one batch of ``B`` samples and ``T`` teachers.

    Attributes:
        student: the student's ``ModelOutput`` (``logits [B, C_s]``, ``features`` by name).
        teachers: one ``ModelOutput`` per teacher; logits in each teacher's OWN label space.
        labels: ground-truth student labels ``[B]``; ``-1`` marks an unlabelled sample.
        domain: domain id of each sample ``[B]``.
        teacher_weights: ``[B, T]`` trust in each teacher per sample (rows sum to 1);
            ``None`` means uniform.
        alignment_weights: ``[B, T]`` or ``[T]`` weights of the feature/relational
            terms per teacher; ``None`` falls back to ``teacher_weights``.
        label_maps: one ``LabelMap`` per teacher (teacher labels → student labels);
            empty means every teacher shares the student's label space.
        temperature: softmax temperature of the logit terms (scheduled by the engine).
        alpha: weight of the distillation term against the task loss (scheduled).
        task: task id of each sample ``[B]`` (multi-task routing), or ``None``.
        step: optimisation step; progress: fraction of training done, 0..1.
    """

    student: Any
    teachers: list[Any] = field(default_factory=list)
    labels: Tensor | None = None
    domain: Tensor | None = None
    teacher_weights: Tensor | None = None
    alignment_weights: Tensor | None = None
    label_maps: Sequence[LabelMap] = field(default_factory=list)
    temperature: float = 1.0
    alpha: float = 0.5
    task: Tensor | None = None
    step: int = 0
    progress: float = 0.0

    @property
    def batch_size(self) -> int:
        """Number of samples ``B`` (rows of the student's logits)."""
        return int(self.student.logits.shape[0])

    @property
    def num_teachers(self) -> int:
        """Number of teachers ``T``."""
        return len(self.teachers)

    def weights(self) -> Tensor:
        """Teacher weights ``[B, T]``: ``teacher_weights`` after a shape check, or uniform."""
        b, t = self.batch_size, self.num_teachers
        if t == 0:
            raise DistillError("the loss needs teacher outputs but LossContext.teachers is empty")
        device = self.student.logits.device
        if self.teacher_weights is None:
            return torch.full((b, t), 1.0 / t, device=device)
        w = self.teacher_weights
        if w.shape != (b, t):
            raise DistillError(
                f"LossContext.teacher_weights has shape {tuple(w.shape)} but the batch has {b} "
                f"samples and {t} teachers; give one row per sample and one column per teacher"
            )
        return w.to(device=device, dtype=self.student.logits.dtype)

    def feature_weights(self) -> Tensor:
        """Per-sample weights ``[B, T]`` of feature/relational terms.

        ``alignment_weights`` (``[B, T]``, or ``[T]`` broadcast over the batch) when
        given, else :meth:`weights`.
        """
        if self.alignment_weights is None:
            return self.weights()
        b, t = self.batch_size, self.num_teachers
        a = self.alignment_weights.to(
            device=self.student.logits.device, dtype=self.student.logits.dtype
        )
        if a.dim() == 1 and a.shape[0] == t:
            return a.unsqueeze(0).expand(b, t)
        if a.shape != (b, t):
            raise DistillError(
                f"LossContext.alignment_weights has shape {tuple(a.shape)}; expected [{b}, {t}] "
                f"(per sample and teacher) or [{t}] (per teacher)"
            )
        return a

    def select(self, rows: Tensor) -> LossContext:
        """The same context restricted to the samples ``rows`` (bool mask or indices)."""
        a = self.alignment_weights
        if a is not None and a.dim() == 2:
            a = a[rows]
        return dataclasses.replace(
            self,
            student=_select_output(self.student, rows),
            teachers=[_select_output(t, rows) for t in self.teachers],
            labels=None if self.labels is None else self.labels[rows],
            domain=None if self.domain is None else self.domain[rows],
            teacher_weights=None if self.teacher_weights is None else self.teacher_weights[rows],
            alignment_weights=a,
            task=None if self.task is None else self.task[rows],
        )
