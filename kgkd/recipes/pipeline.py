"""The shared recipe pipeline: graph → data → teachers → cached outputs → signals → distillation → report.

Every recipe (``sentiment_transfer``, ``digits_transfer``, ...) is this pipeline with
its own defaults. The stages live in :mod:`kgkd.recipes.stages` (what they share in
:mod:`kgkd.recipes.workspace`); :func:`prepare` runs them up to a named one, so notebooks
and benchmarks can stop early and continue by hand::

    cfg = load_config("sentiment_transfer_quick")
    ws = prepare(cfg, until="signals")  # graph, data, teachers, cached outputs, fitted signals
    result = run_config(cfg)            # all stages, writes the output folder
    print(result.table())

Labels of ``data.target_domains`` are never used for training or for fitting
teacher weights: they are hidden (-1) in the training set and only read by the
final evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kgkd.errors import ConfigError
from kgkd.recipes.config import RecipeConfig, config_to_dict, load_config
from kgkd.recipes.evaluation import evaluate, student_predictions
from kgkd.recipes.outputs import write_outputs
from kgkd.recipes.stages import (
    STAGE_NAMES,
    STAGES,
    applicable_teachers,
    build_student,
    cache_outputs,
    check_domains,
    distil,
    fit_weights,
    load_data,
    load_graph,
    make_collators,
    make_weighting,
    mapped_probs,
    method,
    prepare_teachers,
    signal_options,
    split_by_domain,
    student_label_set,
)
from kgkd.recipes.workspace import (
    RecipeResult,
    Stopwatch,
    StudentView,
    Workspace,
    domain_label_remap,
)
from kgkd.utils.io import check_output_dir, staged_output_dir
from kgkd.utils.logging import get_logger
from kgkd.utils.registry import Registry
from kgkd.utils.seed import seed_everything
from kgkd.utils.suggest import suggestion

log = get_logger(__name__)

__all__ = [
    "RECIPES",
    "STAGE_NAMES",
    "RecipeResult",
    "Stopwatch",
    "StudentView",
    "Workspace",
    "applicable_teachers",
    "build_student",
    "cache_outputs",
    "check_domains",
    "distil",
    "domain_label_remap",
    "evaluate",
    "fit_weights",
    "load_data",
    "load_graph",
    "make_collators",
    "make_weighting",
    "mapped_probs",
    "method",
    "prepare",
    "prepare_teachers",
    "resolve_config",
    "run_config",
    "run_recipe",
    "signal_options",
    "split_by_domain",
    "student_label_set",
    "student_predictions",
]


def resolve_config(
    config: RecipeConfig | str | Mapping[str, Any], overrides: Sequence[str] = (), *, smoke: bool | None = None
) -> RecipeConfig:
    """A ``RecipeConfig`` from an object, a shipped name, a YAML path or a mapping, with ``overrides`` applied."""
    if isinstance(config, RecipeConfig):
        return load_config(config_to_dict(config), overrides, smoke=False) if overrides else config
    return load_config(config, overrides, smoke=smoke)


def prepare(
    config: RecipeConfig | str | Mapping[str, Any],
    until: str = "signals",
    overrides: Sequence[str] = (),
    *,
    smoke: bool | None = None,
    workspace: Workspace | None = None,
) -> Workspace:
    """Run the pipeline's stages up to and including ``until``; return the filled workspace.

    Stages (in order): graph, data, teachers, cache, signals, distill, evaluate — the same
    functions and order as :func:`run_config`, which adds writing the output folder.
    ``ws.timings`` holds seconds per stage. ``workspace`` continues a given workspace
    (``run_config`` passes one whose output folder it checked).

    Raises:
        ConfigError: ``until`` is no stage name (with a did-you-mean), or the config is invalid.
    """
    if until not in STAGE_NAMES:
        hint = suggestion(until, STAGE_NAMES)
        raise ConfigError(f"prepare(until={until!r}): no such stage.{hint} Stages in order: {', '.join(STAGE_NAMES)}")
    cfg = resolve_config(config, overrides, smoke=smoke)
    ws = workspace or Workspace(cfg=cfg, out=cfg.output_dir(), show_progress=cfg.output.show_progress)
    seed_everything(cfg.seed)
    clock = Stopwatch()
    clock.timings = ws.timings
    for stage in STAGES:
        with clock.stage(stage.name, stage.what(ws)):
            stage.run(ws)
        if stage.name == until:
            break
    return ws


def run_config(cfg: RecipeConfig) -> RecipeResult:
    """Run the whole pipeline for ``cfg``; write the output folder; return the result.

    The output folder must be new or empty unless ``output.overwrite``; it is checked before
    any work and filled only when every output is written (see ``staged_output_dir``).
    """
    out = check_output_dir(cfg.output_dir(), cfg.output.overwrite, "--overwrite (output.overwrite=true)")
    total = time.perf_counter()
    ws = prepare(cfg, until="evaluate", workspace=Workspace(cfg=cfg, out=out, show_progress=cfg.output.show_progress))
    clock = Stopwatch()
    clock.timings = ws.timings
    # outputs go to a hidden folder next to ``out`` and move in only when all are written
    with staged_output_dir(out, cfg.output.overwrite, "--overwrite (output.overwrite=true)") as stage:
        ws.out = stage
        files = write_outputs(ws, ws.evaluation, clock, total)
    ws.out = out
    files = {k: out / p.relative_to(stage) for k, p in files.items()}
    log.info("run '%s' finished in %.1fs; outputs in %s", cfg.name, clock.timings["total"], out)
    return RecipeResult(cfg, out, files["student"], ws.metrics, ws.weights, clock.timings, files)


#: Recipe name (``recipe:`` key of a config) → its ``run`` function; the shipped ones come from ``catalog``.
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
    cfg = resolve_config(config, overrides, smoke=smoke)
    if expect_modality is not None and cfg.student.kind != _KIND_OF_MODALITY[expect_modality]:
        raise ConfigError(
            f"config '{cfg.name}' has student.kind={cfg.student.kind!r}, but recipe '{cfg.recipe}' distils "
            f"{expect_modality} teachers; set student.kind={_KIND_OF_MODALITY[expect_modality]}"
        )
    return run_config(cfg)


def _register_shipped() -> None:
    from kgkd.recipes.catalog import SHIPPED_RECIPES

    for recipe in SHIPPED_RECIPES:
        RECIPES.register(recipe.name)(recipe.run)


_register_shipped()
