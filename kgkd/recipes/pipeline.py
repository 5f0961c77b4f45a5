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

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kgkd.errors import ConfigError
from kgkd.recipes.catalog import RECIPES, SHIPPED_RECIPES, Recipe
from kgkd.recipes.config import RecipeConfig, config_to_dict, load_config
from kgkd.recipes.evaluation import evaluate, student_predictions
from kgkd.recipes.outputs import write_outputs
from kgkd.recipes.stages import (
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
    open_graph,
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
from kgkd.utils.seed import seed_everything
from kgkd.utils.suggest import suggestion

log = get_logger(__name__)


def evaluate_stage(ws: Workspace) -> None:
    """Stage ``evaluate``: per-domain test metrics into ``ws.evaluation``."""
    ws.evaluation = evaluate(ws)


@dataclass(frozen=True)
class Stage:
    """One named pipeline step: what it logs (``what(ws)``) and the function that runs it."""

    name: str
    what: Callable[[Workspace], str]
    run: Callable[[Workspace], None]


#: The pipeline in order (``prepare(config, until=name)`` runs up to and including ``name``).
STAGES: tuple[Stage, ...] = (
    Stage("graph", lambda ws: f"loading graph '{ws.cfg.graph.path}'", open_graph),
    Stage("data", lambda ws: f"loading {len(ws.domains)} domains", load_data),
    Stage("teachers", lambda ws: f"preparing teachers {', '.join(ws.cfg.teachers.names)}", prepare_teachers),
    Stage("cache", lambda ws: "caching teacher outputs", cache_outputs),
    Stage("signals", lambda ws: f"fitting teacher weights from the graph ({ws.cfg.signals.encoder})", fit_weights),
    Stage("distill", lambda ws: f"distilling into a {ws.cfg.student.kind} student", distil),
    Stage("evaluate", lambda ws: "evaluating per domain", evaluate_stage),
)
#: Stage names in order.
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)

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



def run_recipe(
    config: RecipeConfig | str | Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    smoke: bool | None = None,
    expect_modality: str | None = None,
) -> RecipeResult:
    """Resolve ``config`` (object, shipped name, YAML path or mapping), apply overrides, run it."""
    cfg = resolve_config(config, overrides, smoke=smoke)
    if expect_modality is not None:
        from kgkd.models.students import student_modality, students_for

        if student_modality(cfg.student.kind) != expect_modality:
            raise ConfigError(
                f"config '{cfg.name}' has student.kind={cfg.student.kind!r}, but recipe '{cfg.recipe}' distils "
                f"{expect_modality} teachers; set student.kind to one of {students_for(expect_modality)}"
            )
    return run_config(cfg)


def run_shipped(
    recipe: Recipe,
    config: RecipeConfig | str | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    *,
    smoke: bool | None = None,
) -> RecipeResult:
    """Run shipped ``recipe`` with ``config`` (default: its own) and check the student reads its modality."""
    return run_recipe(config or recipe.default_config, overrides, smoke=smoke, expect_modality=recipe.modality)


def _register_shipped() -> None:
    for recipe in SHIPPED_RECIPES:
        if recipe.name not in RECIPES:
            RECIPES.register(recipe.name)(functools.partial(run_shipped, recipe))


_register_shipped()
