"""Gather teacher probabilities on a graph's domains (what ``kgkd signals fit`` measures)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor

from kgkd.errors import LabelMapError, SignalError
from kgkd.labels import LabelMap
from kgkd.signals.reliability import collect_teacher_probs
from kgkd.utils.logging import get_logger

log = get_logger(__name__)


def resolve_label_maps(kg: Any, teachers: Sequence[str], label_set: str) -> list[LabelMap]:
    """``kg.label_map(t, label_set)`` for every teacher; an unresolvable one → :class:`SignalError`."""
    maps = []
    for t in teachers:
        try:
            maps.append(kg.label_map(t, label_set))
        except LabelMapError as exc:
            raise SignalError(
                f"teacher '{t}' cannot be mapped into label set '{label_set}': {exc}. Link its labels with "
                "kgkd:equivalentLabel / kgkd:broaderLabel, or leave the teacher out of --teachers"
            ) from exc
    return maps


def default_collate(modality: str) -> Callable[[list[Any]], dict[str, Any]]:
    """The collator for a model that brings none of its own: images at 28×28 (text models must bring one)."""
    if modality == "image":
        from kgkd.data.collate import ImageCollator

        return ImageCollator(28)
    raise SignalError("a text teacher must give its own collator (Teacher.collator()); this one has none")


def collect_domain_probs(
    kg: Any,
    teacher_names: Sequence[str],
    domains: Sequence[str],
    split: str = "val",
    limit: int | None = 300,
    seed: int = 0,
    teachers: Sequence[Any] | None = None,
) -> tuple[dict[str, dict[str, Tensor]], dict[str, Tensor]]:
    """Teacher probabilities (in each domain's label set) and labels on ``split`` of ``domains``."""
    from kgkd.data import load_domain
    from kgkd.models import load_teacher

    models = list(teachers) if teachers is not None else [load_teacher(t) for t in teacher_names]
    probs: dict[str, dict[str, Tensor]] = {}
    labels: dict[str, Tensor] = {}
    for d in domains:
        node = kg.domain(d)
        if node.label_set is None:
            raise SignalError(f"domain '{d}' states no kgkd:hasLabelSet in the graph; add one so teachers can be mapped")
        maps = resolve_label_maps(kg, teacher_names, node.label_set)
        dataset = load_domain(d, split, limit=limit, seed=seed)
        by_teacher: dict[str, Tensor] = {}
        for m, lmap in zip(models, maps):  # each teacher through its own collator (tokenizer / transform)
            collate = m.collator() if hasattr(m, "collator") else default_collate(node.modality or "image")
            one, y = collect_teacher_probs([m], dataset, collate, [lmap])
            by_teacher.update(one)
        probs[d] = {name: by_teacher[str(getattr(m, "name", name))] for name, m in zip(teacher_names, models)}
        labels[d] = y
        log.info("collected %d teacher predictions on %s/%s", y.numel(), d, split)
    return probs, labels
