"""The shared recipe pipeline: graph → data → teachers → cached outputs → signals → distillation → report.

Every recipe (``sentiment_transfer``, ``digits_transfer``, ...) is this pipeline with
its own defaults. Each stage is a small function taking what the previous stages
produced, so notebooks can run them one at a time::

    cfg = load_config("sentiment_transfer_quick")
    result = run_config(cfg)            # all stages, writes the output folder
    print(result.table())

Labels of ``data.target_domains`` are never used for training or for fitting
teacher weights: they are hidden (-1) in the training set and only read by the
final evaluation.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from kgkd.errors import ConfigError
from kgkd.labels import LabelMap
from kgkd.paths import cache_dir, graphs_dir
from kgkd.recipes.config import RecipeConfig, config_to_dict, load_config
from kgkd.utils.io import atomic_write_json, check_output_dir, staged_output_dir
from kgkd.utils.logging import get_logger
from kgkd.utils.registry import Registry
from kgkd.utils.seed import seed_everything
from kgkd.utils.suggest import suggestion

log = get_logger(__name__)

__all__ = [
    "RECIPES",
    "RecipeResult",
    "Stopwatch",
    "StudentView",
    "Workspace",
    "domain_label_remap",
    "load_graph",
    "run_config",
    "run_recipe",
    "student_label_set",
]


# --------------------------------------------------------------------------- results
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
    teacher_collate: Any = None
    student_collate: Any = None
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


# --------------------------------------------------------------------------- stages
def load_graph(cfg: RecipeConfig) -> Any:
    """Load (and validate) the recipe's graph; a bare name means ``graphs/<name>.ttl``."""
    from kgkd.graph import KnowledgeGraph

    text = cfg.graph.path
    path = Path(text)
    if path.suffix == "" and not path.exists():
        path = graphs_dir() / f"{text}.ttl"
    if not path.is_file():
        shipped = sorted(p.stem for p in graphs_dir().glob("*.ttl"))
        raise ConfigError(
            f"graph.path: '{text}' is neither a file nor a shipped graph ({', '.join(shipped) or 'none found'}); "
            "give a Turtle file path or a shipped graph name"
        )
    kg = KnowledgeGraph.from_file(path)
    if cfg.graph.extra_turtle:
        kg.merge(KnowledgeGraph.from_string(cfg.graph.extra_turtle, source="graph.extra_turtle"))
    if cfg.graph.validate:
        kg.validate()
    return kg


def student_label_set(kg: Any, cfg: RecipeConfig, domains: Sequence[str]) -> str:
    """The graph label set the student predicts (config → student node → shared domain label set)."""
    if cfg.student.label_set:
        kg.label_set(cfg.student.label_set)  # raises with a did-you-mean when unknown
        return cfg.student.label_set
    for node in kg.students():
        if node.label_set:
            return node.label_set
    sets = {kg.domain(d).label_set for d in domains}
    sets.discard(None)
    if len(sets) == 1:
        return sets.pop()
    raise ConfigError(
        f"student.label_set: the domains {list(domains)} use label sets {sorted(sets)}; name the one the student "
        "predicts with --set student.label_set=<name> (or add a kgkd:Student with kgkd:predicts to the graph)"
    )


def _check_domains(kg: Any, cfg: RecipeConfig) -> list[str]:
    domains = list(cfg.data.source_domains) + list(cfg.data.target_domains)
    if not cfg.data.source_domains:
        raise ConfigError("data.source_domains is empty; list at least one labelled domain")
    overlap = set(cfg.data.source_domains) & set(cfg.data.target_domains)
    if overlap:
        raise ConfigError(f"data: domains {sorted(overlap)} are both source and target; a domain is one or the other")
    known = {d.name for d in kg.domains()}
    for d in domains:
        if d not in known:
            hint = suggestion(d, sorted(known))
            raise ConfigError(f"data: domain '{d}' is not in the graph {kg.source}.{hint} Graph domains: {', '.join(sorted(known))}")
    teachers = {t.name for t in kg.teachers()}
    for t in cfg.teachers.names:
        if t not in teachers:
            hint = suggestion(t, sorted(teachers))
            raise ConfigError(f"teachers.names: '{t}' is not a teacher of the graph.{hint} Graph teachers: {', '.join(sorted(teachers))}")
    if not cfg.teachers.names:
        raise ConfigError("teachers.names is empty; list the graph teachers to distil from")
    _check_component_names(cfg)
    return domains


def _check_component_names(cfg: RecipeConfig) -> None:
    """Fail before any training on a misspelt encoder, weighting or loss name."""
    from kgkd.distill.losses import LOSSES
    from kgkd.recipes.weightings import check_method_names
    from kgkd.signals import ENCODERS

    for key, registry, name in (("signals.encoder", ENCODERS, cfg.signals.encoder), ("distill.loss", LOSSES, cfg.distill.loss)):
        try:
            registry.get(name)
        except ConfigError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    check_method_names([cfg.signals.weighting], "signals.weighting")
    check_method_names(cfg.signals.baselines, "signals.baselines")
    if cfg.signals.weighting == "oracle":
        raise ConfigError("signals.weighting: 'oracle' reads the held-out labels (an upper bound); distil under kg or a baseline")


def load_data(ws: Workspace) -> None:
    """Load train/val/test of every domain; build the augmented, label-hidden training view."""
    from kgkd.data import ImageAugment, MultiDomainDataset, TextAugment, load_domain

    cfg = ws.cfg
    limits = {"train": cfg.data.train_limit, "val": cfg.data.val_limit, "test": cfg.data.test_limit}
    for split, limit in limits.items():
        ws.data[split] = MultiDomainDataset(
            [load_domain(d, split, limit=limit, seed=cfg.seed) for d in ws.domains], split=split
        )
    ws.modality = ws.data["train"].modality
    augmented = ws.data["train"]
    if cfg.data.augment:
        def transform(i: int) -> Any:
            if ws.modality == "text":
                return TextAugment("token_dropout", p=0.1, seed=cfg.seed + i)
            return ImageAugment(max_px=2, noise_std=0.05, seed=cfg.seed + i)

        augmented = MultiDomainDataset(
            [load_domain(d, "train", limit=cfg.data.train_limit, seed=cfg.seed, transform=transform(i))
             for i, d in enumerate(ws.domains)],
            split="train",
        )  # fmt: skip
    remap = [domain_label_remap(ws.kg, d, ws.label_set) for d in ws.domains]
    hidden = [ws.domains.index(d) for d in ws.held_out]
    ws.views = {split: StudentView(ds, remap) for split, ds in ws.data.items()}
    ws.train_view = StudentView(augmented, remap, hidden)
    sizes = ", ".join(f"{s}={len(ds)}" for s, ds in ws.data.items())
    log.info("data: %d domains (%s held out), %s", len(ws.domains), ", ".join(ws.held_out) or "none", sizes)


def make_collators(ws: Workspace) -> None:
    """Teacher and student collators for the modality."""
    from kgkd.data import ImageCollator, TextCollator, load_minilm_tokenizer

    if ws.modality == "text":
        tok = load_minilm_tokenizer()
        ws.teacher_collate = TextCollator(tok, ws.cfg.data.max_length)
        ws.student_collate = TextCollator(tok, ws.cfg.data.max_length)
    else:
        ws.teacher_collate = ImageCollator(size=ws.cfg.data.image_size)
        ws.student_collate = ImageCollator(size=ws.cfg.data.image_size)


def prepare_teachers(ws: Workspace) -> None:
    """Load every configured teacher (training missing ones when allowed) and its label map."""
    from kgkd.recipes.teachers import obtain_teacher

    ws.teachers = [obtain_teacher(name, ws.kg, ws.cfg, ws.show_progress) for name in ws.cfg.teachers.names]
    ws.label_maps = [ws.kg.label_map(t.name, ws.label_set) for t in ws.teachers]


def cache_outputs(ws: Workspace) -> None:
    """Run each teacher once per split and keep its outputs on disk (reused by later runs).

    With feature alignment on, the teacher features it names are cached too.
    """
    from kgkd.recipes.teachers import build_cache

    fa = ws.cfg.distill.feature_alignment
    if fa.weight > 0:
        from kgkd.distill.losses.feature import parse_pairs

        needed = [t for _, t in parse_pairs(fa.pairs, "distill.feature_alignment.pairs")]
        ws.cfg.teachers.features = list(dict.fromkeys([*ws.cfg.teachers.features, *needed]))
    for split, dataset in ws.data.items():
        ws.caches[split] = [
            build_cache(t, dataset, None, ws.cfg, split, ws.show_progress) for t in ws.teachers
        ]


def mapped_probs(caches: Sequence[Any], label_maps: Sequence[LabelMap], n: int) -> list[Tensor]:
    """Every teacher's probabilities over all ``n`` items, moved into the student's labels."""
    out = []
    index = torch.arange(n)
    for cache, lmap in zip(caches, label_maps):
        logits = cache.lookup(index).logits.float()
        p = torch.softmax(logits, dim=-1) @ lmap.matrix()
        out.append(p / p.sum(-1, keepdim=True).clamp_min(1e-12))
    return out


def split_by_domain(dataset: Any, probs: Sequence[Tensor], names: Sequence[str], teachers: Sequence[str]):
    """``({domain: {teacher: probs}}, {domain: labels})`` from stacked per-teacher probabilities."""
    domains = torch.as_tensor(dataset.domains)
    labels = torch.as_tensor(dataset.labels)
    by_domain: dict[str, dict[str, Tensor]] = {}
    labels_by: dict[str, Tensor] = {}
    for i, d in enumerate(names):
        rows = domains == i
        by_domain[d] = {t: p[rows] for t, p in zip(teachers, probs)}
        labels_by[d] = labels[rows]
    return by_domain, labels_by


def applicable_teachers(ws: Workspace, domain: str, by_teacher: dict[str, Tensor]) -> dict[str, Tensor]:
    """``by_teacher`` without teachers whose label set covers none of ``domain``'s labels.

    A clothing teacher says nothing about digits: its zero probability on every digit is
    not a measurement of how reliable it is there. Treating it as "unmeasured" keeps the
    signals (and their shrinkage cross-validation, which then skips folds that would hide
    a teacher's only applicable domain) from learning "never trust it" on a domain it
    cannot even label.
    """
    covered = {lmap.teacher: lmap.matrix().sum(0) > 0 for lmap in ws.label_maps}
    own = torch.as_tensor(domain_label_remap(ws.kg, domain, ws.label_set))
    return {t: p for t, p in by_teacher.items() if t not in covered or bool(covered[t][own].any())}


def fit_weights(ws: Workspace) -> None:
    """Fit the KG signals on the source domains' validation outputs; weights for every domain."""
    from kgkd.signals import fit_signals

    val = ws.views["val"]
    names = [t.name for t in ws.teachers]
    probs = mapped_probs(ws.caches["val"], ws.label_maps, len(val))
    by_domain, labels_by = split_by_domain(val, probs, ws.domains, names)
    ws.val_probs, ws.val_labels = by_domain, labels_by
    source = list(ws.cfg.data.source_domains)
    ws.signals = fit_signals(
        ws.kg,
        {d: applicable_teachers(ws, d, by_domain[d]) for d in source},
        {d: labels_by[d] for d in source},
        source_domains=source,
        encoder=ws.cfg.signals.encoder,
        epochs=ws.cfg.signals.epochs,
        seed=ws.cfg.seed,
        teachers=names,
        **ws.cfg.signals.params,
    )
    ws.weight_table = ws.signals.weights(ws.domains).detach().float()


def build_student(ws: Workspace) -> Any:
    """A fresh student over the student label set (text: vocabulary from the training texts)."""
    from kgkd.models.students import DigitStudent, DigitStudentConfig, TextStudent

    params = dict(ws.cfg.student.params)
    if ws.cfg.student.kind == "text":
        if ws.modality != "text":
            raise ConfigError("student.kind is 'text' but the domains hold images; set student.kind=digit")
        from kgkd.data import load_minilm_tokenizer

        texts = [ds.texts[i] for ds in ws.data["train"].datasets for i in range(len(ds))]
        params.setdefault("max_length", ws.cfg.data.max_length)
        params.setdefault("init_from_teacher", True)
        return TextStudent.from_texts(texts, load_minilm_tokenizer(), label_names=ws.student_labels, **params)
    if ws.modality != "image":
        raise ConfigError("student.kind is 'digit' but the domains hold text; set student.kind=text")
    params.setdefault("input_size", ws.cfg.data.image_size)
    try:
        config = DigitStudentConfig(label_names=tuple(ws.student_labels), **params)
    except TypeError as exc:
        raise ConfigError(f"student.params: {exc}") from None
    return DigitStudent(config)


def signal_options(cfg: RecipeConfig) -> dict[str, Any]:
    """Options for the graph-fitted methods (encoder, epochs, seed and ``signals.params``)."""
    return {"encoder": cfg.signals.encoder, "epochs": cfg.signals.epochs, "seed": cfg.seed, **cfg.signals.params}


def method(ws: Workspace, name: str, target: str | None = None) -> Any:
    """The weighting method ``name`` fitted on the source domains' validation outputs (memoised).

    ``kg_gnn`` is the run's own fitted GNN signals; ``kg`` (the safe default) and every
    other method are fitted here; the oracle is fitted per ``target`` domain.
    """
    from kgkd.recipes.weightings import FittedKG, fit_method

    key = f"{name}@{target}" if name == "oracle" else name
    if key not in ws.methods:
        if name == "kg_gnn":
            ws.methods[key] = FittedKG(ws.signals)
        else:
            options = {k: v for k, v in signal_options(ws.cfg).items() if not (name == "no_graph" and k == "encoder")}
            ws.methods[key] = fit_method(
                name, ws.kg, ws.val_probs, ws.val_labels, ws.cfg.data.source_domains,
                [t.name for t in ws.teachers], options, target=target,
            )  # fmt: skip
    return ws.methods[key]


def make_weighting(name: str, ws: Workspace) -> Any:
    """The engine's ``TeacherWeighting`` for method ``name`` over ``ws.domains``."""
    if name == "kg_gnn":
        return ws.signals.as_weighting(ws.domains, ws.label_maps)
    from kgkd.recipes.weightings import MethodWeighting

    return MethodWeighting(method(ws, name), ws.domains, ws.label_maps)


def distil(ws: Workspace) -> None:
    """Train the student with the engine under the configured weighting."""
    from kgkd.distill.cache import CachedTeacher
    from kgkd.distill.engine import DistillationEngine
    from kgkd.distill.losses import build_loss

    cfg = ws.cfg
    engine_cfg = cfg.distill.engine_config()
    engine_cfg = engine_cfg.replace(seed=cfg.seed, show_progress=ws.show_progress and engine_cfg.show_progress)
    if cfg.device != "auto":
        engine_cfg = engine_cfg.replace(device=cfg.device)
    ws.student = build_student(ws)
    loss = build_loss(cfg.distill.loss, **cfg.distill.loss_params)
    weighting = make_weighting(cfg.signals.weighting, ws)
    if cfg.signals.weighting == "kg":  # report the weights the student is distilled with, and why
        from kgkd.signals.safe import domain_weights_from_choice

        choice = method(ws, "kg").to_json()
        ws.kg_choice = choice["decision"]
        table = domain_weights_from_choice(ws.kg, choice, ws.domains)
        if table is not None:
            ws.weight_table = table
    align = None
    fa = cfg.distill.feature_alignment
    if fa.weight > 0:  # KG alignment weights + cached teacher features into the feature loss
        from kgkd.signals.alignment import with_feature_alignment

        loss, align = with_feature_alignment(loss, ws.signals, ws.domains, fa.weight, fa.loss, fa.projector, fa.pairs)
    engine = DistillationEngine(
        ws.student, [CachedTeacher(c) for c in ws.caches["train"]], loss, weighting, engine_cfg, ws.label_maps,
        alignment_weighting=align, domain_names=ws.domains,
    )  # fmt: skip
    ws.history = engine.fit(ws.train_view, None, collate_fn=ws.student_collate)
    ws.student = engine.student.cpu().eval()


@torch.no_grad()
def student_predictions(student: Any, dataset: Any, collate: Any, batch_size: int = 128) -> Tensor:
    """Argmax predictions of ``student`` over ``dataset`` (in order)."""
    from torch.utils.data import DataLoader

    student.eval()
    preds = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
        preds.append(student(batch).logits.argmax(-1))
    return torch.cat(preds)


def evaluate(ws: Workspace) -> dict[str, Any]:
    """Per-domain test metrics: student, ensembles under each weighting, each single teacher."""
    from kgkd.distill.evaluation import per_domain_metrics

    test = ws.views["test"]
    labels, domains = torch.as_tensor(test.labels), torch.as_tensor(test.domains)
    names = [t.name for t in ws.teachers]
    student = per_domain_metrics(student_predictions(ws.student, test, ws.student_collate), labels, domains, ws.domains)
    probs = mapped_probs(ws.caches["test"], ws.label_maps, len(test))
    stacked = torch.stack(probs, dim=1)  # [N, T, C]
    ensembles: dict[str, dict[str, Any]] = {}
    for name in ["kg", *[b for b in ws.cfg.signals.baselines if b != "kg"]]:
        mixture = torch.zeros(stacked.shape[0], stacked.shape[2])
        for i, d in enumerate(ws.domains):
            rows = domains == i
            if bool(rows.any()):
                mixture[rows] = method(ws, name, target=d).mixture(d, stacked[rows]).float()
        preds = mixture.argmax(-1)
        ensembles[name] = per_domain_metrics(preds, labels, domains, ws.domains)
    singles = {t: per_domain_metrics(p.argmax(-1), labels, domains, ws.domains) for t, p in zip(names, probs)}
    report: dict[str, Any] = {}
    for d in ws.domains:
        report[d] = {
            "role": "target" if d in ws.held_out else "source",
            # no labelled test sample (a user domain without labels): no accuracy anywhere below
            "unlabelled": not bool(((domains == ws.domains.index(d)) & (labels >= 0)).any()),
            "n": int((domains == ws.domains.index(d)).sum()),
            "student": student.get(d, {}),
            "ensembles": {k: v.get(d, {}) for k, v in ensembles.items()},
            "teachers": {t: v.get(d, {}) for t, v in singles.items()},
        }
    return {
        "domains": report,
        "overall": {"student": student["overall"], **{f"ensemble_{k}": v["overall"] for k, v in ensembles.items()}},
    }


def _mean_acc(entries: dict[str, Any], roles: set[str], key: str, sub: str | None = None) -> float | None:
    vals = []
    for e in entries.values():
        if e["role"] not in roles:
            continue
        block = e[key] if sub is None else e[key].get(sub, {})
        if "accuracy" in block:
            vals.append(block["accuracy"])
    return round(float(np.mean(vals)), 4) if vals else None


# --------------------------------------------------------------------------- orchestration
def run_config(cfg: RecipeConfig) -> RecipeResult:
    """Run the whole pipeline for ``cfg``; write the output folder; return the result.

    The output folder must be new or empty unless ``output.overwrite``; it is checked before
    any work and filled only when every output is written (see ``staged_output_dir``).
    """
    out = check_output_dir(cfg.output_dir(), cfg.output.overwrite, "--overwrite (output.overwrite=true)")
    ws = Workspace(cfg=cfg, out=out, show_progress=cfg.output.show_progress)
    seed_everything(cfg.seed)
    clock = Stopwatch()
    total = time.perf_counter()
    with clock.stage("graph", f"loading graph '{cfg.graph.path}'"):
        ws.kg = load_graph(cfg)
        ws.domains = _check_domains(ws.kg, cfg)
        ws.held_out = list(cfg.data.target_domains)
        ws.label_set = student_label_set(ws.kg, cfg, ws.domains)
        ws.student_labels = tuple(ws.kg.label_set(ws.label_set).labels)
    with clock.stage("data", f"loading {len(ws.domains)} domains"):
        load_data(ws)
        make_collators(ws)
    with clock.stage("teachers", f"preparing teachers {', '.join(cfg.teachers.names)}"):
        prepare_teachers(ws)
    with clock.stage("cache", "caching teacher outputs"):
        cache_outputs(ws)
    with clock.stage("signals", f"fitting teacher weights from the graph ({cfg.signals.encoder})"):
        fit_weights(ws)
    with clock.stage("distill", f"distilling into a {cfg.student.kind} student"):
        distil(ws)
    with clock.stage("evaluate", "evaluating per domain"):
        evaluation = evaluate(ws)
    # outputs go to a hidden folder next to ``out`` and move in only when all are written
    with staged_output_dir(out, cfg.output.overwrite, "--overwrite (output.overwrite=true)") as stage:
        ws.out = stage
        files = _write_outputs(ws, evaluation, clock, total)
    ws.out = out
    files = {k: out / p.relative_to(stage) for k, p in files.items()}
    log.info("run '%s' finished in %.1fs; outputs in %s", cfg.name, clock.timings["total"], out)
    return RecipeResult(cfg, out, files["student"], ws.metrics, ws.weights, clock.timings, files)


def _write_outputs(ws: Workspace, evaluation: dict[str, Any], clock: Stopwatch, total: float) -> dict[str, Path]:
    """Save the student, ``metrics.json``, plots and weighted graph into ``ws.out``; return their paths."""
    from kgkd.recipes import report

    cfg, out = ws.cfg, ws.out
    student_dir = ws.student.save_pretrained(out / "student")
    atomic_write_json(student_dir / "kgkd_recipe.json", {
        "recipe": cfg.recipe, "name": cfg.name, "modality": ws.modality, "domains": ws.domains,
        "held_out": ws.held_out, "label_set": ws.label_set, "label_names": list(ws.student_labels),
        "max_length": cfg.data.max_length, "image_size": cfg.data.image_size, "graph": "graph.ttl",
    })  # fmt: skip
    ws.kg.serialize(student_dir / "graph.ttl")  # the student folder is self-contained
    names = [t.name for t in ws.teachers]
    assert ws.weight_table is not None
    weights = {d: {t: round(float(ws.weight_table[i, j]), 6) for j, t in enumerate(names)} for i, d in enumerate(ws.domains)}
    clock.timings["total"] = round(time.perf_counter() - total, 3)
    domains = evaluation["domains"]
    metrics: dict[str, Any] = {
        "name": cfg.name,
        "recipe": cfg.recipe,
        "label_set": ws.label_set,
        "teachers": names,
        "source_domains": list(cfg.data.source_domains),
        "target_domains": ws.held_out,
        **evaluation,
        "summary": {
            "student_mean_acc_target": _mean_acc(domains, {"target"}, "student"),
            "kg_ensemble_mean_acc_target": _mean_acc(domains, {"target"}, "ensembles", "kg"),
            "student_mean_acc_source": _mean_acc(domains, {"source"}, "student"),
        },
        "weights": weights,
        "kg_choice": ws.kg_choice,
        "signals_history": {k: v for k, v in (ws.signals.history or {}).items() if k != "curve"},
        "distill_history": _history(ws.history),
        "timings": clock.timings,
        "config": config_to_dict(cfg),
    }
    ws.metrics, ws.weights = metrics, weights
    files = report.write_run_outputs(ws, metrics)
    files["student"] = student_dir
    return files



#: Recipe name (``recipe:`` key of a config) → its ``run`` function; recipe modules register here.
RECIPES: Registry[Callable[..., RecipeResult]] = Registry("recipe")

_KIND_OF_MODALITY = {"text": "text", "image": "digit"}


def run_recipe(
    config: RecipeConfig | str | Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    smoke: bool | None = None,
    expect_modality: str | None = None,
) -> RecipeResult:
    """Resolve ``config`` (object, shipped name, YAML path or mapping), apply overrides, run it."""
    if isinstance(config, RecipeConfig):
        cfg = load_config(config_to_dict(config), overrides, smoke=False) if overrides else config
    else:
        cfg = load_config(config, overrides, smoke=smoke)
    if expect_modality is not None and cfg.student.kind != _KIND_OF_MODALITY[expect_modality]:
        raise ConfigError(
            f"config '{cfg.name}' has student.kind={cfg.student.kind!r}, but recipe '{cfg.recipe}' distils "
            f"{expect_modality} teachers; set student.kind={_KIND_OF_MODALITY[expect_modality]}"
        )
    return run_config(cfg)


_STEP_KEYS = frozenset({"step", "epoch", "loss", "acc", "lr", "temperature", "alpha", "grad_norm"})


def _history(history: Any) -> dict[str, Any]:
    if history is None:
        return {}
    epochs = getattr(history, "epochs", None)
    losses = history.losses() if hasattr(history, "losses") else []
    # per-epoch means of the loss's own terms (kd, ce, feature, ...), in epoch order
    sums: dict[str, dict[int, list[float]]] = {}
    for step in getattr(history, "steps", []):
        for key, value in step.items():
            if key not in _STEP_KEYS:
                sums.setdefault(key, {}).setdefault(int(step.get("epoch", 0)), []).append(float(value))
    terms = {k: [round(float(np.mean(v[e])), 6) for e in sorted(v)] for k, v in sums.items()}
    return {"steps": len(losses), "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None, "epochs": epochs, "terms_by_epoch": terms}


def default_cache_root() -> Path:
    """Where teacher checkpoints and output caches live (``KGKD_CACHE_DIR``)."""
    return cache_dir()
