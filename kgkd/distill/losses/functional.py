"""Tensor helpers shared by the logit losses: label-space moves and masked KL.

Teachers may predict other label sets than the student. A teacher's softmax is
moved into the student's label space with ``LabelMap.logits_to_student`` (many-to-one
maps add probabilities, renormalised over the student labels the teacher covers)
and compared with the student's softmax renormalised over the same labels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kgkd.errors import DistillError
from kgkd.labels import LabelMap


def teacher_probs(
    teacher_logits: Tensor,
    num_student_labels: int,
    temperature: float,
    label_map: LabelMap | None = None,
    teacher: str = "teacher 0",
) -> tuple[Tensor, Tensor]:
    """Teacher probabilities at ``temperature`` in the student's label space.

    Returns ``(p [B, C_s], covered [C_s] bool)``; ``p`` sums to 1 over ``covered``.
    Without a label map the teacher must share the student's labels.
    """
    logits = teacher_logits.detach().float()
    if label_map is None:
        if logits.shape[-1] != num_student_labels:
            raise DistillError(
                f"{teacher} predicts {logits.shape[-1]} labels but the student predicts "
                f"{num_student_labels}; pass one LabelMap per teacher in LossContext.label_maps "
                "(kg.label_map(teacher, student_labels))"
            )
        covered = torch.ones(num_student_labels, dtype=torch.bool, device=logits.device)
        return torch.softmax(logits / temperature, dim=-1), covered
    name = f"{teacher} ('{label_map.teacher}')"
    if logits.shape[-1] != label_map.num_teacher_labels:
        raise DistillError(
            f"{name} returned {logits.shape[-1]} logits but its label map lists "
            f"{label_map.num_teacher_labels} teacher labels; rebuild the label map for this teacher"
        )
    if label_map.num_student_labels != num_student_labels:
        raise DistillError(
            f"{name}: its label map targets {label_map.num_student_labels} student labels but the "
            f"student predicts {num_student_labels}; build the map against the student's label set"
        )
    return label_map.logits_to_student(logits, temperature), label_map.covered(device=logits.device)


def masked_log_softmax(logits: Tensor, mask: Tensor, temperature: float) -> Tensor:
    """``log_softmax(logits / T)`` renormalised over ``mask`` (``[C]`` or ``[B, C]``); 0 outside."""
    mask = mask.expand_as(logits)
    scaled = (logits.float() / temperature).masked_fill(~mask, float("-inf"))
    return torch.log_softmax(scaled, dim=-1).masked_fill(~mask, 0.0)


def kl_per_sample(p: Tensor, log_q: Tensor) -> Tensor:
    """``KL(p ‖ q)`` per row ``[B]``; entries with ``p == 0`` contribute 0."""
    return (torch.xlogy(p, p) - p * log_q).sum(dim=-1)
