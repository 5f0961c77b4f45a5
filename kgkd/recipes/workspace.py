"""What the recipe stages hand to each other, and what a run returns.

:class:`Workspace` is the one mutable record the stages of :mod:`kgkd.recipes.stages`
fill in order; :class:`StudentView` shows a multi-domain dataset in the student's label
space; :class:`RecipeResult` is what ``run_config`` returns; :class:`Stopwatch` times stages.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset

from kgkd.errors import ConfigError
from kgkd.labels import LabelMap
from kgkd.recipes.config import RecipeConfig
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

__all__ = ["RecipeResult", "Stopwatch", "StudentView", "Workspace", "domain_label_remap"]


@dataclass
class RecipeResult:
    """What a recipe run returns (and what ``metrics.json`` holds).

    Attributes:
        output_dir: the run folder.
        student_dir: the saved student (``kgkd.models.load_student(student_dir)``).
        metrics: per-domain metrics, weights, compression and timings (``metrics.json``).
        weights: fitted teacher weights ``{domain: {teacher: w}}``.
        timings: seconds per stage and ``total``.
    """

    config: RecipeConfig
    output_dir: Path
    student_dir: Path
    metrics: dict[str, Any]
    weights: dict[str, dict[str, float]]
    timings: dict[str, float]
    files: dict[str, Path] = field(default_factory=dict)

    def table(self) -> str:
        """Per-domain accuracy table (student vs ensembles)."""
        from kgkd.recipes.report import format_table

        return format_table(self.metrics)

    def student_accuracy(self, domain: str) -> float:
        """The student's test accuracy on ``domain`` (a ConfigError for an unknown or unlabelled domain)."""
        entry = self.metrics["domains"].get(domain)
        if entry is None:
            raise ConfigError(f"domain '{domain}' is not part of run '{self.config.name}'; its domains: {', '.join(self.metrics['domains'])}")
        if "accuracy" not in entry["student"]:
            raise ConfigError(f"domain '{domain}' has no test labels, so there is no accuracy; see metrics['domains']['{domain}']")
        return float(entry["student"]["accuracy"])


class Stopwatch:
    """Times named stages and logs each as it ends."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str, what: str) -> Iterator[None]:
        log.info("[%s] %s ...", name, what)
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 3)
        log.info("[%s] done in %.1fs", name, self.timings[name])


class StudentView(Dataset):
    """A multi-domain dataset seen in the student's label space, optionally hiding some domains' labels.

    ``remap[d]`` maps domain ``d``'s own label indices to student label indices (the graph's
    label links decide it: clothing label 3 is student label 13 in the 20-class amalgamated
    set). Domains in ``hidden`` read label -1 (unlabelled) — how held-out domains join the
    training set. ``index`` and ``fingerprint()`` pass through, so teacher caches stay valid.
    """

    def __init__(self, dataset: Any, remap: Sequence[np.ndarray], hidden: Sequence[int] = ()) -> None:
        self.dataset = dataset
        self.remap = [np.asarray(r, dtype=np.int64) for r in remap]
        self.hidden = {int(d) for d in hidden}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.dataset[index]
        d = int(item["domain"])
        label = int(item["label"])  # -1: an unlabelled sample (user domains) stays unlabelled
        item["label"] = -1 if d in self.hidden or label < 0 else int(self.remap[d][label])
        return item

    @property
    def domain_names(self) -> list[str]:
        return list(self.dataset.domain_names)

    @property
    def domains(self) -> np.ndarray:
        return np.asarray(self.dataset.domains)

    @property
    def labels(self) -> np.ndarray:
        """Student-space labels (-1 for hidden domains)."""
        raw, dom = np.asarray(self.dataset.labels), self.domains
        out = np.empty_like(raw)
        for d, table in enumerate(self.remap):
            rows = dom == d
            own = raw[rows]
            out[rows] = -1 if d in self.hidden else np.where(own >= 0, table[np.maximum(own, 0)], -1)
        return out

    def fingerprint(self) -> str:
        return str(self.dataset.fingerprint())


def domain_label_remap(kg: Any, domain: str, label_set: str) -> np.ndarray:
    """Domain ``domain``'s label index → student label index, through the graph's label links."""
    from kgkd.graph.labelmap import resolve_label
    from kgkd.graph.reader import members

    own = kg.domain(domain).label_set
    if own is None or own == label_set:
        return np.arange(len(kg.label_set(label_set).labels))
    from rdflib import URIRef

    graph = kg.graph
    own_iri, student_iri = URIRef(kg.label_set(own).iri), URIRef(kg.label_set(label_set).iri)
    index = {iri: j for j, iri in enumerate(members(graph, student_iri))}
    table = np.array([resolve_label(graph, lab, index, domain) for lab in members(graph, own_iri)], dtype=np.int64)
    if (table < 0).any():
        raise ConfigError(
            f"domain '{domain}': labels of its label set '{own}' have no counterpart in the student label set "
            f"'{label_set}'; link them with kgkd:equivalentLabel in the graph or pick another student.label_set"
        )
    return table


@dataclass
class Workspace:
    """Everything the stages hand to each other during one run."""

    cfg: RecipeConfig
    out: Path
    show_progress: bool
    kg: Any = None
    domains: list[str] = field(default_factory=list)
    held_out: list[str] = field(default_factory=list)
    modality: str = "text"
    student_labels: tuple[str, ...] = ()
    label_set: str = ""
    teachers: list[Any] = field(default_factory=list)
    label_maps: list[LabelMap] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # split → MultiDomainDataset (raw, domain labels)
    views: dict[str, StudentView] = field(default_factory=dict)  # split → student-label view
    train_view: Any = None  # train split with augmentation and hidden target labels
    teacher_collates: list[Any] = field(default_factory=list)  # one per teacher, from the teacher itself
    student_collate: Any = None  # from the student (set when the student is built)
    caches: dict[str, list[Any]] = field(default_factory=dict)  # split → TeacherCache per teacher
    signals: Any = None
    val_probs: dict[str, dict[str, Tensor]] = field(default_factory=dict)  # domain → teacher → [N, C]
    val_labels: dict[str, Tensor] = field(default_factory=dict)
    methods: dict[str, Any] = field(default_factory=dict)  # fitted comparison weightings
    weight_table: Tensor | None = None  # [D, T] for ``domains``
    kg_choice: dict[str, Any] | None = None  # what the safe ``kg`` weighting chose and why
    student: Any = None
    history: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)  # what metrics.json holds, once written
    weights: dict[str, dict[str, float]] = field(default_factory=dict)  # {domain: {teacher: w}}
    evaluation: dict[str, Any] = field(default_factory=dict)  # per-domain test metrics (stage "evaluate")
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage run so far
