"""Input checks of the distillation engine: what it is given and what models return.

Each check raises :class:`~kgkd.errors.DistillError` naming the teacher, shape or
batch key at fault and how to fix it, before a wrong shape turns into a silent
broadcast or a NaN many steps later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from kgkd.errors import DistillError
from kgkd.labels import LabelMap


def check_label_maps(teachers: Sequence[nn.Module], label_maps: Sequence[LabelMap]) -> None:
    """One label map per teacher, each matching its teacher's labels, all into one student label set."""
    if len(label_maps) != len(teachers):
        raise DistillError(
            f"the engine got {len(teachers)} teachers but {len(label_maps)} label maps; "
            "give exactly one LabelMap per teacher, in the same order"
        )
    for teacher, lmap in zip(teachers, label_maps):
        name = getattr(teacher, "name", lmap.teacher)
        n = getattr(teacher, "num_labels", None)
        if isinstance(n, int) and n != lmap.num_teacher_labels:
            raise DistillError(
                f"teacher '{name}' predicts {n} labels but its label map lists {lmap.num_teacher_labels} "
                f"teacher labels {list(lmap.teacher_labels)}; build the label map from this teacher's label set"
            )
    students = {lm.student_labels for lm in label_maps}
    if len(students) > 1:
        raise DistillError(
            f"the label maps target different student label sets {sorted(map(list, students))}; "
            "map every teacher into the same student labels"
        )


def check_weightings(
    teachers: Sequence[nn.Module], weighting: nn.Module | None, alignment: nn.Module | None
) -> None:
    """Teachers need a weighting; weightings built for a teacher count must match the engine's."""
    if teachers and weighting is None:
        raise DistillError(
            "the engine got teachers but no weighting; pass e.g. UniformWeighting(len(teachers))"
        )
    for what, module in (("weighting", weighting), ("alignment_weighting", alignment)):
        n = getattr(module, "num_teachers", None)
        if isinstance(n, int) and n != len(teachers):
            raise DistillError(
                f"the engine's {what} ({type(module).__name__}) was built for {n} teachers but the "
                f"engine has {len(teachers)}; build it with the engine's teacher list"
            )


def check_student(out: Any, label_maps: Sequence[LabelMap]) -> None:
    """The student's logits have one column per student label of the label maps."""
    if not label_maps:
        return
    n = label_maps[0].num_student_labels
    if out.logits.dim() != 2 or out.logits.shape[-1] != n:
        raise DistillError(
            f"the student returned logits of shape {tuple(out.logits.shape)} but the label maps have {n} "
            f"student labels {list(label_maps[0].student_labels)}; give the student {n} outputs"
        )


def check_teacher_outputs(
    outs: Sequence[Any],
    teachers: Sequence[nn.Module],
    label_maps: Sequence[LabelMap],
    batch: Mapping[str, Any],
    step: int | None,
) -> None:
    """Teacher logits are ``[B, labels of its map]`` and finite (checked in one device sync)."""
    if not outs:
        return
    finite = torch.stack([torch.isfinite(o.logits).all() for o in outs]).tolist()
    for o, ok, lmap, teacher in zip(outs, finite, label_maps, teachers):
        name = getattr(teacher, "name", lmap.teacher)
        if o.logits.dim() != 2 or o.logits.shape[-1] != lmap.num_teacher_labels:
            raise DistillError(
                f"teacher '{name}' returned logits of shape {tuple(o.logits.shape)} but its label map lists "
                f"{lmap.num_teacher_labels} teacher labels; give the label map of this teacher's label set"
            )
        if not ok:
            where = f" at step {step}" if step is not None else ""
            bad = batch.get("index")
            rows = (~torch.isfinite(o.logits)).any(dim=-1)
            idx = bad[rows.to(bad.device)][:5].tolist() if isinstance(bad, Tensor) else "?"
            raise DistillError(
                f"teacher '{name}' returned NaN/inf logits{where} (dataset indices {idx}); "
                "check its inputs and weights, or rebuild its cache"
            )


def check_weights(w: Tensor, t: int, b: int, who: str) -> None:
    """Teacher weights are ``[B, T]``, finite and ≥ 0."""
    if w.shape != (b, t):
        raise DistillError(
            f"{who} returned teacher weights of shape {tuple(w.shape)}; expected [{b}, {t}] "
            "(one row per sample, one column per teacher)"
        )
    if not bool(torch.isfinite(w).all() & (w >= 0).all()):
        raise DistillError(
            f"{who} returned negative or NaN/inf teacher weights (min {float(w.min()):.4g}); "
            "teacher weights must be finite and ≥ 0 (rows summing to 1, e.g. a softmax)"
        )


def batch_labels(batch: Mapping[str, Any]) -> Tensor:
    """The batch's ``labels`` (or ``label``) as int64; −1 marks unlabelled samples."""
    labels = batch.get("labels", batch.get("label"))
    if not isinstance(labels, Tensor):
        raise DistillError(
            f"a batch has no 'labels' tensor (keys: {sorted(batch)}); use a kgkd collator "
            "(ImageCollator / TextCollator) or give -1 labels for unlabelled data"
        )
    return labels.long()


def dataset_domain_names(dataset: Any) -> list[str]:
    """Names of a dataset's domain ids (``domain_names``, or its ``name`` at ``domain_id``)."""
    names = getattr(dataset, "domain_names", None)
    if isinstance(names, (list, tuple)):
        return list(names)
    name = getattr(dataset, "name", None)
    if isinstance(name, str):
        return [f"domain_{i}" for i in range(getattr(dataset, "domain_id", 0))] + [name]
    return []
