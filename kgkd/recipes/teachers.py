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

log = get_logger(__name__)

__all__ = ["build_cache", "obtain_teacher", "teacher_domain", "teacher_train_command"]


def teacher_domain(kg: Any, name: str) -> str:
    """The (first) domain the graph says teacher ``name`` was trained on."""
    node = kg.teacher(name)
    if not node.trained_on:
        raise ConfigError(f"graph teacher '{name}' has no kgkd:trainedOn; add `kgkd:trainedOn :<domain>` to it")
    return node.trained_on[0]


def teacher_train_command(kg: Any, name: str) -> str:
    """The shell command that creates the checkpoint of teacher ``name``."""
    from kgkd.models.loading import teacher_dir

    return f"kgkd teachers train --domain {teacher_domain(kg, name)} --out {teacher_dir(name)}"


def _train_kwargs(cfg: RecipeConfig) -> dict[str, Any]:
    from kgkd.models.training import train_teacher

    accepted = set(inspect.signature(train_teacher).parameters) - {"domain", "out", "seed", "show_progress"}
    unknown = sorted(set(cfg.teachers.train) - accepted)
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], sorted(accepted), n=1)
        hint = f" Did you mean 'teachers.train.{close[0]}'?" if close else ""
        raise ConfigError(f"unknown config key 'teachers.train.{unknown[0]}'.{hint} Valid keys: {', '.join(sorted(accepted))}")
    return dict(cfg.teachers.train)


def obtain_teacher(name: str, kg: Any, cfg: RecipeConfig, show_progress: bool = True) -> Any:
    """Load teacher ``name``; train it first when its checkpoint is missing and training is allowed.

    Raises:
        CheckpointError: no checkpoint and ``teachers.train_if_missing`` is false (the message
            names the expected path and the command that creates it).
    """
    from kgkd.models.loading import load_teacher, teacher_dir
    from kgkd.models.training import train_teacher

    domain = teacher_domain(kg, name)
    kwargs = _train_kwargs(cfg)
    try:
        teacher = load_teacher(name)
    except CheckpointError:
        if teacher_dir(name).exists():  # present but broken: never paper over it
            raise
        if not cfg.teachers.train_if_missing:
            raise CheckpointError(
                f"no checkpoint for teacher '{name}' at {teacher_dir(name)} and teachers.train_if_missing is false; "
                f"create it with `{teacher_train_command(kg, name)}` or run with --set teachers.train_if_missing=true"
            ) from None
        log.info("teacher %s has no checkpoint: training it on '%s' (%s)", name, domain, kwargs or "defaults")
        train_teacher(domain, out=teacher_dir(name), seed=cfg.seed, show_progress=show_progress, **kwargs)
        teacher = load_teacher(name)
    teacher.name = name  # the graph's name, whatever the checkpoint was first saved as
    return teacher


def build_cache(teacher: Any, dataset: Any, collate: Any, cfg: RecipeConfig, split: str, show_progress: bool) -> Any:
    """The ``TeacherCache`` of ``teacher`` over ``dataset`` (reused when its fingerprint matches)."""
    from kgkd.distill.cache import TeacherCache
    from kgkd.paths import cache_dir

    fp = str(dataset.fingerprint())[:16]
    feats = "__" + "+".join(cfg.teachers.features) if cfg.teachers.features else ""  # caches with features apart
    path = cache_dir() / "teacher_outputs" / f"{teacher.name}__{split}__{fp}{feats}.safetensors"
    dtype = "fp16" if cfg.teachers.cache_dtype == "float16" else "fp32"
    return TeacherCache.get_or_build(
        teacher, dataset, collate, path=path, batch_size=cfg.teachers.batch_size,
        features=tuple(cfg.teachers.features), dtype=dtype,
        preprocessing=f"max_length={cfg.data.max_length};image_size={cfg.data.image_size}",
        show_progress=show_progress,
    )  # fmt: skip
