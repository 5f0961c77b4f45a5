"""Recipe glue for teachers: find or train each graph teacher, cache its outputs once.

A graph teacher node (``teacher_nyt``) names the domain it was trained on
(``kgkd:trainedOn :nyt_editorials``); the checkpoint lives in
``<KGKD_CACHE_DIR>/teachers/<teacher name>``. Pretrained digit nets (ccexam) need no
checkpoint. Outputs are cached per (teacher, split, dataset fingerprint) under
``<KGKD_CACHE_DIR>/teacher_outputs`` and reused by every later run on the same data.
"""

from __future__ import annotations

import inspect
from typing import Any

from kgkd.errors import CheckpointError, ConfigError
from kgkd.recipes.config import RecipeConfig
from kgkd.utils.logging import get_logger
from kgkd.utils.suggest import suggestion

log = get_logger(__name__)

__all__ = [
    "build_cache", "obtain_teacher", "register_teacher", "teacher_collator", "teacher_domain", "teacher_train_command",
    "wanted_kind",
]


def teacher_domain(kg: Any, name: str) -> str:
    """The (first) domain the graph says teacher ``name`` was trained on."""
    node = kg.teacher(name)
    if not node.trained_on:
        raise ConfigError(f"graph teacher '{name}' has no kgkd:trainedOn; add `kgkd:trainedOn :<domain>` to it")
    return node.trained_on[0]


def teacher_train_command(kg: Any, name: str, settings: dict[str, Any] | None = None, out: Any = None) -> str:
    """The shell command that creates the checkpoint of teacher ``name`` (with ``settings`` when given)."""
    from kgkd.models.loading import teacher_dir

    flags = ""
    for key in ("kind", "epochs", "limit", "max_length", "trainable_layers", "lr", "batch_size", "seed"):
        value = (settings or {}).get(key)
        if value is not None:
            flags += f" --{key.replace('_', '-')} {value}"
    return f"kgkd teachers train --domain {teacher_domain(kg, name)}{flags} --out {out or teacher_dir(name)}"


def _train_kwargs(cfg: RecipeConfig) -> dict[str, Any]:
    from kgkd.models.training import train_teacher

    accepted = set(inspect.signature(train_teacher).parameters) - {"domain", "out", "seed", "show_progress"}
    unknown = sorted(set(cfg.teachers.train) - accepted)
    if unknown:
        hint = suggestion(unknown[0], sorted(accepted), prefix="teachers.train.")
        raise ConfigError(f"unknown config key 'teachers.train.{unknown[0]}'.{hint} Valid keys: {', '.join(sorted(accepted))}")
    return dict(cfg.teachers.train)


def wanted_kind(kg: Any, name: str, train: dict[str, Any]) -> str | None:
    """The kind to train for teacher ``name``: ``teachers.train.kind``, else the graph's architecture.

    The graph node's ``kgkd:architecture`` names the family before any ``:`` (``hf:minilm`` → ``hf``,
    ``tfidf_logreg``, ``cnn``); an architecture kgkd cannot train (``ccexam:mnist``) gives None.
    """
    from kgkd.models.training import TRAIN_KINDS

    if train.get("kind"):
        return str(train["kind"])
    family = str(kg.teacher(name).architecture or "").split(":")[0]
    return family if family in TRAIN_KINDS else None


def obtain_teacher(name: str, kg: Any, cfg: RecipeConfig, show_progress: bool = True) -> Any:
    """The teacher ``name`` trained with the settings ``cfg`` asks for; trained first when missing.

    A checkpoint is reused only when the training fingerprint it records equals the one these
    settings give (data, limit, epochs, layers, max_length, seed, base model, lr, kind). A
    different checkpoint under the same name is left alone: the teacher is trained into the
    side-by-side folder ``teacher_<domain>@<fingerprint>``. Teachers registered with
    ``kgkd teachers add`` and packaged pretrained nets (graph architecture ``ccexam:*``) are
    used as they are.

    Raises:
        CheckpointError: no matching checkpoint and ``teachers.train_if_missing`` is false (the
            message names the folder found, how its settings differ and the command that trains
            the wanted one); or a checkpoint folder is broken.
    """
    from kgkd.models.loading import load_checkpoint, pretrained_teacher, teacher_dir
    from kgkd.models.provenance import (
        TRAINING_KEY,
        describe_settings,
        read_meta,
        recorded_fingerprint,
        settings_diff,
        variant_dir,
    )  # fmt: skip
    from kgkd.models.training import plan_training, train_teacher

    domain = teacher_domain(kg, name)
    plain = teacher_dir(name)
    meta = read_meta(plain)
    if meta is not None and meta.get("registered"):
        return load_checkpoint(plain, name)
    pretrained = pretrained_teacher(kg.teacher(name).architecture, name)
    if pretrained is not None:
        return pretrained
    if plain.exists() and meta is None:
        load_checkpoint(plain, name)  # raises the clear "incomplete folder" error: never paper over it
    kwargs = {**_train_kwargs(cfg), "kind": wanted_kind(kg, name, cfg.teachers.train)}
    plan = plan_training(domain, seed=cfg.seed, **{k: v for k, v in kwargs.items() if k != "out"})
    variant = variant_dir(plain, plan.fingerprint)
    for folder in (plain, variant):
        if recorded_fingerprint(read_meta(folder)) == plan.fingerprint:
            return load_checkpoint(folder, name)
    if meta is not None:
        recorded = meta.get(TRAINING_KEY)
        why = (f"its settings differ ({settings_diff(recorded, plan.settings)})" if isinstance(recorded, dict)
               else "it records no training settings (trained by an older kgkd), so it cannot be matched")  # fmt: skip
        if not cfg.teachers.train_if_missing:
            raise CheckpointError(
                f"teacher '{name}': the checkpoint {plain} was not trained with the settings this recipe asks for: "
                f"{why}. Train the wanted one with `{teacher_train_command(kg, name, plan.settings, variant)}` "
                "or run with --set teachers.train_if_missing=true (it is then kept next to the other)"
            )
        log.warning("teacher %s: not reusing %s (%s); training one with this recipe's settings into %s",
                    name, plain, describe_settings(meta), variant)  # fmt: skip
    elif not cfg.teachers.train_if_missing:
        raise CheckpointError(
            f"no checkpoint for teacher '{name}' at {plain} and teachers.train_if_missing is false; "
            f"create it with `{teacher_train_command(kg, name, plan.settings, plain)}` or run with "
            "--set teachers.train_if_missing=true"
        )
    target = variant if plain.exists() else plain
    log.info("teacher %s: training on '%s' (%s) into %s", name, domain, describe_settings(
        {TRAINING_KEY: plan.settings, "training_fingerprint": plan.fingerprint}), target)  # fmt: skip
    train_teacher(domain, out=target, seed=cfg.seed, show_progress=show_progress, **kwargs)
    return load_checkpoint(target, name)


def teacher_collator(teacher: Any, cfg: RecipeConfig) -> Any:
    """``teacher``'s own collator at the recipe's ``data.max_length`` / ``data.image_size``."""
    return teacher.collator(max_length=cfg.data.max_length, image_size=cfg.data.image_size)


def build_cache(teacher: Any, dataset: Any, collate: Any, cfg: RecipeConfig, split: str, show_progress: bool) -> Any:
    """The ``TeacherCache`` of ``teacher`` over ``dataset`` (reused when its fingerprint matches).

    ``collate`` None means the teacher's own collator (:func:`teacher_collator`).
    """
    collate = teacher_collator(teacher, cfg) if collate is None else collate
    from kgkd.distill.cache import TeacherCache
    from kgkd.paths import cache_dir

    fp = str(dataset.fingerprint())[:16]
    feats = "__" + "+".join(cfg.teachers.features) if cfg.teachers.features else ""  # caches with features apart
    # the teacher's own fingerprint in the name: teachers trained with other settings keep their own caches
    tfp = str(teacher.fingerprint())[:8] if hasattr(teacher, "fingerprint") else "x"
    path = cache_dir() / "teacher_outputs" / f"{teacher.name}__{tfp}__{split}__{fp}{feats}"  # sharded folder
    dtype = "fp16" if cfg.teachers.cache_dtype == "float16" else "fp32"
    return TeacherCache.get_or_build(
        teacher, dataset, collate, path=path, batch_size=cfg.teachers.batch_size,
        features=tuple(cfg.teachers.features), dtype=dtype,
        preprocessing=f"max_length={cfg.data.max_length};image_size={cfg.data.image_size}",
        show_progress=show_progress,
    )  # fmt: skip


def register_teacher(
    name: str, path: Any, domain: str, graph: Any, *, out: Any = None, overwrite: bool = False, root: Any = None,
    module: str | None = None, module_args: dict[str, Any] | None = None, preprocess: Any = None,
    labels: list[str] | None = None, feature_layers: dict[str, str] | None = None,
) -> tuple[Any, Any]:  # fmt: skip
    """Register an existing model as teacher ``name`` of ``domain`` (what ``kgkd teachers add`` does).

    Checks the model (loads it, maps its labels onto the domain's label set), adds the
    ``kgkd:Teacher`` node (trainedOn, predicts, architecture) to the graph and validates it with
    SHACL — all before writing anything. Then writes the registration folder and the graph to
    ``out`` (default ``<graph stem>_<name>.ttl`` next to it). The input graph is replaced only
    when ``out`` is that same file and ``overwrite`` is true.

    Returns:
        ``(registration folder, written graph path)``.

    Raises:
        ConfigError: bad name, an output that exists without ``overwrite``, or a teacher already in the graph.
        GraphError / GraphValidationError: unknown domain or a graph SHACL rejects.
        ModelError / CheckpointError: the model cannot be loaded or its labels cannot be mapped.
    """
    from pathlib import Path

    from rdflib import Literal, URIRef
    from rdflib.namespace import RDF, RDFS

    from kgkd.graph import KnowledgeGraph
    from kgkd.graph import vocab as V
    from kgkd.models.loading import TEACHER_PREFIX, teacher_dir
    from kgkd.models.registration import registration_meta, write_registration

    if not name.startswith(TEACHER_PREFIX) or len(name) == len(TEACHER_PREFIX) or not name.replace("_", "").isalnum():
        raise ConfigError(f"teacher name '{name}' must look like 'teacher_<word>' (letters, digits, '_'), e.g. 'teacher_mybert'")
    graph_path = Path(graph)
    target = Path(out) if out is not None else graph_path.with_name(f"{graph_path.stem}_{name}.ttl")
    same = target.exists() and graph_path.exists() and target.resolve() == graph_path.resolve()
    if same and (out is None or not overwrite):
        raise ConfigError(f"--out {target} is the input graph; pass it with --overwrite to replace the input, or choose another --out")
    if target.exists() and not overwrite:
        raise ConfigError(f"--out {target} already exists; choose another path or pass --overwrite")
    kg = KnowledgeGraph.from_file(graph_path)
    node = kg.domain(domain)
    if node.label_set is None:
        raise ConfigError(f"{graph_path}: domain '{domain}' has no kgkd:hasLabelSet; add one so the teacher's labels can be mapped")
    if name in {t.name for t in kg.teachers()}:
        raise ConfigError(f"{graph_path} already has a teacher '{name}'; pick another NAME")
    folder = teacher_dir(name, root)
    if folder.exists() and not overwrite:
        raise ConfigError(f"{folder} already exists (teacher '{name}' is registered or trained there); pass --overwrite or pick another NAME")
    rdfs_labels = {lab.name: lab.label or lab.name for lab in kg.labels()}
    graph_labels = [(n, rdfs_labels.get(n, n)) for n in kg.label_set(node.label_set).labels]
    meta = registration_meta(
        name, path, domain, node.label_set, graph_labels, module=module, module_args=module_args,
        preprocess=preprocess, labels=labels, feature_layers=feature_layers,
    )  # fmt: skip
    iri = URIRef(str(node.iri)[: -len(domain)] + name)
    set_iri = next(ls.iri for ls in kg.label_sets() if ls.name == node.label_set)
    kg.add_statements([
        (iri, RDF.type, V.Teacher), (iri, RDFS.label, Literal(f"{name} (registered)")),
        (iri, RDFS.comment, Literal(f"{meta['architecture']} registered from {meta['source']}")),
        (iri, V.architecture, Literal(meta["architecture"])), (iri, V.trainedOn, URIRef(str(node.iri))),
        (iri, V.predicts, URIRef(str(set_iri))),
    ])  # fmt: skip
    kg.validate()
    write_registration(meta, folder)
    kg.serialize(target)
    log.info("registered %s (%s) from %s; graph written to %s", name, meta["kind"], meta["source"], target)
    return folder, target
