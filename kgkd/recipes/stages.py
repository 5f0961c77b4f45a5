"""The recipe stages: graph → data → teachers → cached outputs → signals → distillation.

Each stage is a function of the :class:`~kgkd.recipes.workspace.Workspace` filling in what
the next one reads; :data:`STAGES` lists them in order, and
:func:`kgkd.recipes.pipeline.prepare` runs them up to a named one. Labels of
``data.target_domains`` are hidden (-1) in the training view and never fit a weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kgkd.errors import ConfigError
from kgkd.labels import LabelMap
from kgkd.paths import graphs_dir
from kgkd.recipes.config import RecipeConfig
from kgkd.recipes.workspace import StudentView, Workspace, domain_label_remap
from kgkd.utils.logging import get_logger
from kgkd.utils.suggest import suggestion

log = get_logger(__name__)


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


def check_domains(kg: Any, cfg: RecipeConfig) -> list[str]:
    """Sources then targets, after checking them, the teachers and component names against the graph."""
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
    check_component_names(cfg)
    return domains


def check_component_names(cfg: RecipeConfig) -> None:
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


def open_graph(ws: Workspace) -> None:
    """Stage ``graph``: the graph, the run's domains (sources then targets) and the student label set."""
    cfg = ws.cfg
    ws.kg = load_graph(cfg)
    ws.domains = check_domains(ws.kg, cfg)
    ws.held_out = list(cfg.data.target_domains)
    ws.label_set = student_label_set(ws.kg, cfg, ws.domains)
    ws.student_labels = tuple(ws.kg.label_set(ws.label_set).labels)


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
    """Each teacher's collator from the teacher itself; the student's from the student once it is built."""
    from kgkd.recipes.teachers import teacher_collator

    ws.teacher_collates = [teacher_collator(t, ws.cfg) for t in ws.teachers]
    if ws.student is not None:
        ws.student_collate = student_collator(ws.student, ws.cfg)


def student_collator(student: Any, cfg: RecipeConfig) -> Any:
    """``student``'s own collator at the recipe's ``data.max_length`` / ``data.image_size``."""
    return student.collator(max_length=cfg.data.max_length, image_size=cfg.data.image_size)


def prepare_teachers(ws: Workspace) -> None:
    """Load every configured teacher (training missing ones when allowed) and its label map."""
    from kgkd.recipes.teachers import obtain_teacher

    ws.teachers = [obtain_teacher(name, ws.kg, ws.cfg, ws.show_progress) for name in ws.cfg.teachers.names]
    ws.label_maps = [ws.kg.label_map(t.name, ws.label_set) for t in ws.teachers]
    make_collators(ws)


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
    from kgkd.signals.engine_adapter import FittedSignalsMethod

    fitted = FittedSignalsMethod(ws.signals)  # this fit is the run's ``kg_gnn`` method: no second fit
    ws.methods[fitted.name] = fitted


def build_student(ws: Workspace) -> Any:
    """A fresh student (``student.kind``: a preset or an architecture) over the student label set.

    Text students take their vocabulary from the training texts of every domain.
    """
    from kgkd.models.students import build_student as build

    texts = None
    if ws.modality == "text":
        texts = [ds.texts[i] for ds in ws.data["train"].datasets for i in range(len(ds))]
    facts = {"max_length": ws.cfg.data.max_length, "input_size": ws.cfg.data.image_size}
    try:
        return build(ws.cfg.student.kind, texts, ws.student_labels, ws.modality, facts, **ws.cfg.student.params)
    except ConfigError as exc:
        raise ConfigError(f"student: {exc}") from None


def signal_options(cfg: RecipeConfig) -> dict[str, Any]:
    """Options for the graph-fitted methods (encoder, epochs, seed and ``signals.params``)."""
    return {"encoder": cfg.signals.encoder, "epochs": cfg.signals.epochs, "seed": cfg.seed, **cfg.signals.params}


def method(ws: Workspace, name: str, target: str | None = None) -> Any:
    """The ``WEIGHTINGS`` method ``name`` fitted on the source domains' validation outputs (memoised).

    A method that reads target labels (the oracle, an upper bound) is fitted per ``target``.
    The signals stage already put its fitted GNN in ``ws.methods`` under the name it
    stands for, so that one is never fitted twice.
    """
    from kgkd.recipes.weightings import fit_method
    from kgkd.signals import WEIGHTINGS

    key = f"{name}@{target}" if WEIGHTINGS.get(name).uses_target_labels else name
    if key not in ws.methods:
        ws.methods[key] = fit_method(
            name, ws.kg, ws.val_probs, ws.val_labels, ws.cfg.data.source_domains,
            [t.name for t in ws.teachers], signal_options(ws.cfg), target=target,
        )  # fmt: skip
    return ws.methods[key]


def make_weighting(name: str, ws: Workspace) -> Any:
    """The engine's ``TeacherWeighting`` for method ``name`` over ``ws.domains``."""
    from kgkd.signals.engine_adapter import engine_weighting

    return engine_weighting(method(ws, name), ws.domains, ws.label_maps)


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
    ws.student_collate = student_collator(ws.student, cfg)
    loss = build_loss(cfg.distill.loss, **cfg.distill.loss_params)
    weighting = make_weighting(cfg.signals.weighting, ws)
    # report the weights the student is distilled with (when the method has a per-domain table), and why
    from kgkd.signals.engine_adapter import decision, domain_table

    chosen = method(ws, cfg.signals.weighting)
    ws.kg_choice = decision(chosen)
    table = domain_table(chosen, ws.kg, ws.domains)
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
