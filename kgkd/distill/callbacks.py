"""Callbacks: progress, logging, evaluation and early stopping around the engine loop.

A callback overrides any of the hooks of :class:`Callback`. The engine calls
them in list order with a mutable ``logs`` dict, so a callback may add metrics
that later callbacks read (put :class:`PerDomainEvaluator` before
:class:`EarlyStopping` when stopping on its metric). Callbacks with
``main_process_only = True`` (loggers, progress bars) run on rank 0 only;
the others run on every rank and must make the same decision everywhere —
metrics reaching them are already all-reduced.

Epoch-level metric names are flat strings: ``train_loss``, ``val/accuracy``,
``val/macro_f1``, ``val/<domain>/accuracy``, ``<name>/<domain>/macro_f1``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from kgkd.errors import DistillError
from kgkd.utils.io import atomic_write_text
from kgkd.utils.logging import get_logger

if TYPE_CHECKING:  # pragma: no cover
    from torch.utils.data import Dataset

    from kgkd.distill.engine import DistillationEngine, History

log = get_logger(__name__)


class Callback:
    """Base class: every hook is a no-op."""

    #: Run on rank 0 only (loggers, bars) or on every rank (anything that steers training).
    main_process_only: bool = True

    def on_fit_start(self, engine: DistillationEngine) -> None:
        """Before the first step (after a resume, at the resumed step)."""

    def on_epoch_start(self, engine: DistillationEngine, epoch: int) -> None:
        """At the start of epoch ``epoch`` (0-based)."""

    def on_step_end(self, engine: DistillationEngine, step: int, logs: dict[str, float]) -> None:
        """After optimiser step ``step`` (1-based); ``logs`` has loss, acc, lr, temperature, alpha."""

    def on_epoch_end(self, engine: DistillationEngine, epoch: int, logs: dict[str, float]) -> None:
        """After epoch ``epoch`` and its validation; may add entries to ``logs``."""

    def on_fit_end(self, engine: DistillationEngine, history: History) -> None:
        """When training ends (finished, stopped early or ``max_steps`` reached)."""


def flatten_metrics(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """``{"overall": {"accuracy": a}, "mnist": {...}}`` → ``{"<prefix>/accuracy": a, "<prefix>/mnist/accuracy": ...}``."""
    flat: dict[str, float] = {}
    for group, values in metrics.items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            name = f"{prefix}/{key}" if group == "overall" else f"{prefix}/{group}/{key}"
            flat[name] = float(value)
    return flat


class ProgressBar(Callback):
    """A tqdm bar per epoch showing the running loss and batch accuracy."""

    def __init__(self, leave: bool = False) -> None:
        self.leave = leave
        self._bar: Any = None
        self._loss = math.nan

    def on_epoch_start(self, engine: DistillationEngine, epoch: int) -> None:
        self._bar = tqdm(
            total=engine.steps_in_epoch(epoch),
            desc=f"epoch {epoch + 1}/{engine.config.epochs}",
            leave=self.leave,
            dynamic_ncols=True,
        )
        self._loss = math.nan

    def on_step_end(self, engine: DistillationEngine, step: int, logs: dict[str, float]) -> None:
        if self._bar is None:
            return
        loss = logs["loss"]
        self._loss = loss if math.isnan(self._loss) else 0.9 * self._loss + 0.1 * loss
        postfix = {"loss": f"{self._loss:.4f}"}
        if not math.isnan(logs.get("acc", math.nan)):
            postfix["acc"] = f"{logs['acc']:.3f}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)

    def on_epoch_end(self, engine: DistillationEngine, epoch: int, logs: dict[str, float]) -> None:
        self._close()

    def on_fit_end(self, engine: DistillationEngine, history: History) -> None:
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class CSVLogger(Callback):
    """Writes ``steps.csv`` (one row per logged step) and ``epochs.csv`` into ``directory``.

    Files are rewritten atomically at every epoch end, so a reader never sees a
    half-written row.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._steps: list[dict[str, float]] = []
        self._epochs: list[dict[str, float]] = []

    def on_step_end(self, engine: DistillationEngine, step: int, logs: dict[str, float]) -> None:
        if step % engine.config.log_every == 0:
            self._steps.append({"step": step, **logs})

    def on_epoch_end(self, engine: DistillationEngine, epoch: int, logs: dict[str, float]) -> None:
        self._epochs.append({"epoch": epoch, **logs})
        self._flush()

    def on_fit_end(self, engine: DistillationEngine, history: History) -> None:
        self._flush()

    def _flush(self) -> None:
        atomic_write_text(self.directory / "steps.csv", _to_csv(self._steps))
        atomic_write_text(self.directory / "epochs.csv", _to_csv(self._epochs))


def _to_csv(rows: Sequence[dict[str, float]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


class TensorBoardLogger(Callback):
    """Scalars to TensorBoard: ``train/<key>`` per logged step, epoch metrics per epoch."""

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._writer: Any = None

    def on_fit_start(self, engine: DistillationEngine) -> None:
        from torch.utils.tensorboard import SummaryWriter  # heavy import, only when used

        self._writer = SummaryWriter(log_dir=str(self.log_dir))

    def on_step_end(self, engine: DistillationEngine, step: int, logs: dict[str, float]) -> None:
        if self._writer is not None and step % engine.config.log_every == 0:
            for key, value in logs.items():
                self._writer.add_scalar(f"train/{key}", value, step)

    def on_epoch_end(self, engine: DistillationEngine, epoch: int, logs: dict[str, float]) -> None:
        if self._writer is None:
            return
        for key, value in logs.items():
            if "/" in key or key.startswith("train"):
                self._writer.add_scalar(key if "/" in key else f"epoch/{key}", value, epoch + 1)
        self._writer.flush()

    def on_fit_end(self, engine: DistillationEngine, history: History) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class PerDomainEvaluator(Callback):
    """Evaluates the student on another dataset every ``every`` epochs; adds ``<name>/...`` metrics."""

    main_process_only = False  # evaluation gathers over ranks

    def __init__(
        self,
        dataset: Dataset,
        collate_fn: Callable[[list[Any]], dict[str, Any]],
        name: str = "test",
        every: int = 1,
        ensemble: bool = False,
    ) -> None:
        self.dataset = dataset
        self.collate_fn = collate_fn
        self.name = name
        self.every = max(1, every)
        self.ensemble = ensemble
        self.results: list[dict[str, Any]] = []

    def on_epoch_end(self, engine: DistillationEngine, epoch: int, logs: dict[str, float]) -> None:
        if (epoch + 1) % self.every:
            return
        metrics = engine.evaluate(self.dataset, self.collate_fn, ensemble=self.ensemble)
        self.results.append({"epoch": epoch, **metrics})
        logs.update(flatten_metrics(metrics["student"], self.name))
        if "ensemble" in metrics:
            logs.update(flatten_metrics(metrics["ensemble"], f"{self.name}_ensemble"))


class EarlyStopping(Callback):
    """Stops training when ``metric`` has not improved for ``patience`` evaluations.

    ``mode="max"`` for accuracy-like metrics, ``"min"`` for losses. Runs on
    every rank: the metric is all-reduced, so all ranks stop together.
    """

    main_process_only = False

    def __init__(
        self,
        metric: str = "val/accuracy",
        patience: int = 3,
        mode: str = "max",
        min_delta: float = 0.0,
    ) -> None:
        if mode not in ("max", "min"):
            raise DistillError(f"EarlyStopping mode must be 'max' or 'min', got '{mode}'")
        self.metric = metric
        self.patience = patience
        self.mode = mode
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0

    def on_epoch_end(self, engine: DistillationEngine, epoch: int, logs: dict[str, float]) -> None:
        if self.metric not in logs:
            if any(k.startswith(("val/", "test/")) for k in logs) or not engine.has_validation:
                raise DistillError(
                    f"EarlyStopping metric '{self.metric}' is not among the epoch metrics "
                    f"{sorted(logs)}; pick one of them (and pass val_dataset to fit)"
                )
            return  # not an evaluation epoch
        value = logs[self.metric]
        better = (
            self.best is None
            or (self.mode == "max" and value > self.best + self.min_delta)
            or (self.mode == "min" and value < self.best - self.min_delta)
        )
        if better:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            log.info(
                "early stopping at epoch %d: %s did not improve on %.4f",
                epoch + 1,
                self.metric,
                self.best,
            )
            engine.stop_training = True
