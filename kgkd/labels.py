"""Label maps: how a teacher's label set lands in the student's label space.

A teacher may predict a different label set than the student (digits vs. clothing,
fine vs. coarse sentiment). ``LabelMap`` holds, for each teacher label, the student
label it is equivalent to (or broader-than → many-to-one), or -1 when the student has
no such label. The graph's label nodes fill it (``KnowledgeGraph.label_map``); the
distillation losses, the signals and the evaluation move teacher probabilities with
``to_student`` / ``logits_to_student`` — the one place that says how.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from kgkd.errors import LabelMapError


@dataclass(frozen=True)
class LabelMap:
    """Teacher label index → student label index (-1: no counterpart)."""

    teacher_labels: tuple[str, ...]
    student_labels: tuple[str, ...]
    mapping: tuple[int, ...]
    teacher: str = "teacher"

    def __post_init__(self) -> None:
        if len(self.mapping) != len(self.teacher_labels):
            raise LabelMapError(
                f"label map of teacher '{self.teacher}' has {len(self.mapping)} entries but the "
                f"teacher predicts {len(self.teacher_labels)} labels; give one target per teacher label"
            )
        n = len(self.student_labels)
        for i, j in enumerate(self.mapping):
            if not -1 <= j < n:
                raise LabelMapError(
                    f"label map of teacher '{self.teacher}': teacher label "
                    f"'{self.teacher_labels[i]}' maps to student index {j}, outside 0..{n - 1} (or -1)"
                )
        if all(j < 0 for j in self.mapping):
            raise LabelMapError(
                f"label map of teacher '{self.teacher}' maps none of its labels "
                f"{list(self.teacher_labels)} into the student's labels {list(self.student_labels)}; "
                "link them with kgkd:equivalentLabel / kgkd:broaderLabel in the graph"
            )

    @classmethod
    def identity(cls, labels: Sequence[str], teacher: str = "teacher") -> LabelMap:
        """Map a label set onto itself (teacher and student share labels)."""
        return cls(tuple(labels), tuple(labels), tuple(range(len(labels))), teacher)

    @classmethod
    def by_name(
        cls, teacher_labels: Sequence[str], student_labels: Sequence[str], teacher: str = "teacher"
    ) -> LabelMap:
        """Map labels with identical names; the rest map to -1."""
        index = {name: j for j, name in enumerate(student_labels)}
        mapping = tuple(index.get(name, -1) for name in teacher_labels)
        return cls(tuple(teacher_labels), tuple(student_labels), mapping, teacher)

    @property
    def num_teacher_labels(self) -> int:
        return len(self.teacher_labels)

    @property
    def num_student_labels(self) -> int:
        return len(self.student_labels)

    def matrix(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
        """A 0/1 matrix [C_teacher, C_student]; ``p_teacher @ M`` moves probabilities to student labels."""
        m = torch.zeros(self.num_teacher_labels, self.num_student_labels, dtype=dtype)
        rows = [i for i, j in enumerate(self.mapping) if j >= 0]
        m[rows, [self.mapping[i] for i in rows]] = 1.0
        return m.to(device) if device is not None else m

    def covered(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Bool mask [C_student]: student labels this teacher has an opinion on."""
        mask = torch.zeros(self.num_student_labels, dtype=torch.bool, device=device)
        for j in self.mapping:
            if j >= 0:
                mask[j] = True
        return mask

    def to_student(self, probs: torch.Tensor) -> torch.Tensor:
        """Teacher probabilities ``[..., C_teacher]`` → the student's label space ``[..., C_student]``.

        ``probs @ matrix()`` (labels mapped many-to-one add up, labels without a student
        counterpart lose their mass), then each row is renormalised to sum to 1 over the
        student labels this teacher covers (``covered()``): the teacher's belief *given* that
        the answer is one of the labels it knows, so a teacher with a partial label set is as
        confident as one with a full set. A row whose whole mass sat on unmapped labels stays 0.
        Every consumer (losses, signals, ensemble evaluation, recipes) uses this one move, so
        their ensemble numbers agree.
        """
        if probs.shape[-1] != self.num_teacher_labels:
            raise LabelMapError(
                f"label map of teacher '{self.teacher}' lists {self.num_teacher_labels} teacher labels but got "
                f"probabilities over {probs.shape[-1]}; rebuild it with kg.label_map(teacher, student_label_set)"
            )
        moved = probs @ self.matrix(dtype=probs.dtype, device=probs.device)
        return moved / moved.sum(dim=-1, keepdim=True).clamp_min(1e-12)

    def logits_to_student(self, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """``to_student(softmax(logits / temperature))`` in float32: teacher logits → student-space probabilities."""
        return self.to_student(torch.softmax(logits.float() / temperature, dim=-1))
