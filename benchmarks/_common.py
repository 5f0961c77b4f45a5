"""Shared helpers of the benchmarks: recipe workspaces, students under a weighting, machine facts.

The benchmarks never re-implement a weighting or a training loop: they run the
stages of :mod:`kgkd.recipes.pipeline` (graph → data → teachers → cached outputs →
signals) once per task and then call the pipeline's own ``distil``/``evaluate``
once per weighting, so every number is what ``kgkd run`` would produce.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
#: Where results JSON go (env ``KGKD_BENCHMARK_RESULTS`` moves them, e.g. for the smoke tests).
RESULTS_DIR = Path(os.environ.get("KGKD_BENCHMARK_RESULTS") or REPO / "benchmarks" / "results")
#: Students saved by transfer_quality and reused by robustness (gitignored ``runs/``; env ``KGKD_BENCHMARK_RUNS``).
RUNS_DIR = Path(os.environ.get("KGKD_BENCHMARK_RUNS") or REPO / "runs" / "benchmarks")

if str(REPO) not in sys.path:  # run as `python benchmarks/x.py` from a fresh clone
    sys.path.insert(0, str(REPO))

from kgkd.recipes import pipeline as P
from kgkd.recipes.config import RecipeConfig, load_config
from kgkd.utils.io import atomic_write_json
from kgkd.utils.logging import (
    configure_logging,
    get_logger,
)
from kgkd.utils.seed import seed_everything

log = get_logger("kgkd.benchmarks")

#: Ensemble weightings compared (oracle = upper bound fitted on the target's own labels).
ENSEMBLE_WEIGHTINGS = ("uniform", "confidence", "best_single", "kg", "no_graph", "oracle")
#: Weightings a student is distilled under (oracle is not a method; see ``--oracle-student``).
STUDENT_WEIGHTINGS = ("uniform", "confidence", "best_single", "kg", "no_graph")
#: Name of the label-only reference student (same architecture, source labels, no teachers).
LABEL_ONLY = "label_only"
SCALES = ("smoke", "quick", "full")


def machine_info() -> dict[str, Any]:
    """CPU model, cores, GPU (or none), torch and Python versions."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 0
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "cpu": cpu or "unknown",
        "cores": usable,
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def set_threads(n: int) -> None:
    """Pin torch's CPU threads (oversubscribed cores make every step several times slower)."""
    if n < 1:
        raise SystemExit(f"--threads must be >= 1, got {n}")
    torch.set_num_threads(n)


def recipe_config(base: str, scale: str, seed: int, overrides: Sequence[str] = ()) -> RecipeConfig:
    """A shipped config at a benchmark scale: ``smoke`` = its smoke block, ``quick`` = the _quick variant, ``full`` = as shipped."""
    name = f"{base}_quick" if scale == "quick" else base
    sets = [f"seed={seed}", "output.show_progress=false", "output.plots=false", *overrides]
    return load_config(name, sets, smoke=(scale == "smoke"))


def with_changes(cfg: RecipeConfig, **sections: dict[str, Any]) -> RecipeConfig:
    """A copy of ``cfg`` with fields of its sections replaced (``signals={"weighting": "kg"}``)."""
    changes = {name: dataclasses.replace(getattr(cfg, name), **values) for name, values in sections.items()}
    return dataclasses.replace(cfg, **changes)


def prepare(cfg: RecipeConfig) -> tuple[P.Workspace, dict[str, float]]:
    """Run the recipe stages up to fitted signals (``kgkd.recipes.prepare``, as ``run_config`` runs them)."""
    ws = P.prepare(cfg, until="signals")
    return ws, dict(ws.timings)


def model_collator(model: Any, cfg: RecipeConfig) -> Any:
    """``model``'s own collator (teacher or student) at the recipe's ``max_length`` / ``image_size``."""
    return model.collator(max_length=cfg.data.max_length, image_size=cfg.data.image_size)


def distil_student(ws: P.Workspace, weighting: str) -> tuple[Any, float]:
    """Distil a fresh student under ``weighting`` (or train the label-only student); returns (student, seconds).

    Every student starts from the run's seed, so the students differ only by weighting.
    ``label_only`` trains the same architecture with the engine's ``ce`` loss: labelled
    source samples only, the teachers' outputs are never used.
    """
    base = ws.cfg
    if weighting == LABEL_ONLY:
        ws.cfg = with_changes(base, signals={"weighting": "uniform"}, distill={"loss": "ce", "loss_params": {}})
    else:
        ws.cfg = with_changes(base, signals={"weighting": weighting})
    seed_everything(base.seed)
    start = time.perf_counter()
    try:
        P.distil(ws)
    finally:
        ws.cfg = base
    return ws.student, round(time.perf_counter() - start, 2)


def evaluate_student(ws: P.Workspace, student: Any) -> dict[str, Any]:
    """The pipeline's per-domain evaluation of ``student`` (plus every ensemble of ``signals.baselines``)."""
    ws.student = student
    return P.evaluate(ws)


def run_dir(task: str) -> Path:
    """Folder where a task's benchmark students are kept for reuse."""
    return RUNS_DIR / task


def save_students(task: str, students: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Save each student (safetensors + JSON) and a manifest saying which run made them."""
    folder = run_dir(task)
    folder.mkdir(parents=True, exist_ok=True)
    for name, student in students.items():
        student.save_pretrained(folder / name)
    atomic_write_json(folder / "manifest.json", {**meta, "students": sorted(students)})
    return folder


def load_saved_students(task: str, meta: dict[str, Any], names: Sequence[str]) -> dict[str, Any] | None:
    """The students saved by a transfer run with the same ``meta`` (scale, seed, config), else None."""
    from kgkd.models.students.base import load_student

    folder = run_dir(task)
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    saved = json.loads(manifest.read_text())
    if any(saved.get(k) != v for k, v in meta.items()) or not set(names) <= set(saved.get("students", [])):
        return None
    return {n: load_student(folder / n).eval() for n in names}


def student_meta(task: str, cfg: RecipeConfig, scale: str) -> dict[str, Any]:
    """What identifies a set of benchmark students (reuse only when all of it matches)."""
    return {"task": task, "scale": scale, "seed": cfg.seed, "config": json.loads(json.dumps(dataclasses.asdict(cfg), default=str))}


def benchmark_parser(doc: str | None, tasks: Sequence[str], seed_help: str | None, overrides_help: str | None = None) -> Any:
    """The options every benchmark shares: ``--scale``, ``--seed`` (unless ``seed_help`` is None), ``--only``,
    ``--threads`` (and ``--set`` when ``overrides_help`` is given)."""
    import argparse

    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=SCALES, default="full",
                        help="smoke (seconds, plumbing only), quick (minutes), full (the committed results)")
    if seed_help is not None:
        parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--only", choices=sorted(tasks), action="append", help="run only this task (repeatable)")
    if overrides_help:
        parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=overrides_help)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a shared 2-core machine 2 threads thrash, 5x slower)")
    return parser


def parse_and_setup(parser: Any, argv: Sequence[str] | None) -> Any:
    """Parse ``argv``, turn on logging and pin torch's threads; returns the arguments."""
    args = parser.parse_args(argv)
    configure_logging()
    set_threads(args.threads)
    return args


def new_payload(benchmark: str, scale: str, seed: int) -> dict[str, Any]:
    """The header every results JSON starts with: what ran, when, where, with which command."""
    from datetime import UTC, datetime

    return {
        "benchmark": benchmark, "scale": scale, "seed": seed,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command_line(), "machine": machine_info(), "tasks": {},
    }  # fmt: skip


def finish(payload: dict[str, Any], started: float, name: str | None = None) -> dict[str, Any]:
    """Stamp the wall-clock seconds since ``started`` (``perf_counter``), write ``<name>.json``, say where.

    ``name`` defaults to the payload's benchmark name.
    """
    payload["seconds"] = round(time.perf_counter() - started, 1)
    path = write_result(name or payload["benchmark"], payload)
    print(f"wrote {shown(path)} in {payload['seconds']:.0f}s", flush=True)
    return payload


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` atomically."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    atomic_write_json(path, payload)
    return path


def shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (for log lines), else as given."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def pct(x: float | None) -> str:
    """0.8734 → '87.3' (blank for missing)."""
    return "" if x is None else f"{100 * x:.1f}"


def command_line() -> str:
    """The command that started this process, as typed."""
    return " ".join(["python", *sys.argv])
