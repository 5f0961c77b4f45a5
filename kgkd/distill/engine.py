"""``DistillationEngine``: the training loop that moves several teachers into one student.

Per batch the engine (1) runs the frozen teachers — live modules or
``CachedTeacher``s reading stored outputs — without autograd, (2) asks the
``TeacherWeighting`` how much to trust each teacher on each sample, (3) fills a
:class:`~kgkd.distill.context.LossContext` with the scheduled temperature and
α, and (4) back-propagates the loss into the student and any loss parameters
(feature projectors), with gradient clipping, autocast (CUDA bf16/fp16; CPU bf16 when asked) and
an LR schedule.

The same code runs on CPU, on one GPU and under ``torchrun`` (DDP; the student
and the loss are wrapped together so projector gradients are all-reduced too).
Checkpoints (safetensors + JSON) hold everything needed for a bit-identical
resume on CPU: weights, optimiser, scheduler, RNG states and the position in
the seeded data order. The engine sees tensors only; graphs live elsewhere.

This module is the loop; its parts live next to it: ``engine_state`` (checkpoint
save / resume), ``optim`` (optimiser and LR schedule), ``engine_checks`` (input
checks), ``engine_runtime`` (device and mixed precision). Temperature and α come
only from the engine's schedules (``EngineConfig``), never from the loss.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from torch.utils.data._utils.collate import default_collate

from kgkd.distill import engine_checks as checks
from kgkd.distill.callbacks import Callback, EarlyStopping, ProgressBar, flatten_metrics
from kgkd.distill.config import EngineConfig
from kgkd.distill.context import LossContext
from kgkd.distill.distributed import (
    DistContext,
    ResumableSampler,
    ShardSampler,
    all_gather_varlen,
    all_reduce_sum,
    barrier,
    init_distributed,
)
from kgkd.distill.engine_runtime import amp_dtype, as_float, autocast, frozen, to_device
from kgkd.distill.engine_state import (
    TrainingParts,
    find_state,
    position_after_fit,
    restore_state,
    save_state,
)
from kgkd.distill.evaluation import ensemble_probs, per_domain_metrics
from kgkd.distill.optim import build_optimizer, build_scheduler
from kgkd.distill.schedules import schedule_from_fields
from kgkd.errors import DistillError
from kgkd.labels import LabelMap
from kgkd.utils.io import atomic_write_json
from kgkd.utils.logging import get_logger
from kgkd.utils.seed import seed_everything

log = get_logger(__name__)

Collate = Callable[[list[Any]], dict[str, Any]]


@dataclass
class History:
    """What a ``fit`` did: one record per optimiser step and one per epoch.

    ``steps[i]`` has ``step, epoch, loss, acc, lr, temperature, alpha``, ``grad_norm``
    (total gradient norm before clipping, when ``grad_clip`` is set) and the
    loss's ``last_terms`` when it exposes them; ``epochs[i]`` has ``epoch``,
    ``train_loss``, ``train_acc`` and the flat validation metrics.
    """

    steps: list[dict[str, float]] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    reached_max_steps: bool = False

    def losses(self) -> list[float]:
        """The per-step training loss curve."""
        return [s["loss"] for s in self.steps]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> Path:
        """Write the history as JSON (atomically)."""
        return atomic_write_json(path, self.to_dict())


class _StudentWithLoss(nn.Module):
    """Student and loss as one module, so DDP syncs the gradients of both (projectors too)."""

    def __init__(self, student: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.student = student
        self.loss = loss

    def forward(self, batch: dict[str, Any], ctx: LossContext) -> tuple[Tensor, Any]:
        out = self.student(batch)
        return self.loss(dataclasses.replace(ctx, student=out)), out


class DistillationEngine:
    """Distil ``teachers`` into ``student`` with ``loss``, trusting teachers as ``weighting`` says.

    Args:
        student: the model being trained; ``forward(batch) -> ModelOutput``.
        teachers: frozen ``Teacher``s or ``CachedTeacher``s (may be empty: plain supervised
            training with e.g. the ``ce`` loss, the baseline every distillation run is compared with).
        loss: a ``DistillLoss``; its parameters (projectors) are trained with the student.
        weighting: ``TeacherWeighting``: ``(domain [B], teacher logits) -> [B, T]``.
        config: :class:`EngineConfig`.
        label_maps: one ``LabelMap`` per teacher (teacher labels → student labels).
        alignment_weighting: optional ``TeacherWeighting`` giving the feature/relational
            weights (``LossContext.alignment_weights``).
        callbacks: extra :class:`Callback`s (a progress bar and early stopping are added
            from the config).
        domain_names: names of domain ids for metrics (default: the dataset's ``domain_names``).
    """

    def __init__(
        self,
        student: nn.Module,
        teachers: Sequence[nn.Module],
        loss: nn.Module,
        weighting: nn.Module | None,
        config: EngineConfig,
        label_maps: Sequence[LabelMap],
        alignment_weighting: nn.Module | None = None,
        callbacks: Sequence[Callback] = (),
        domain_names: Sequence[str] | None = None,
    ) -> None:
        self.config = config
        self.teachers = list(teachers)
        self.label_maps = list(label_maps)
        checks.check_label_maps(self.teachers, self.label_maps)
        checks.check_weightings(self.teachers, weighting, alignment_weighting)
        self.dist: DistContext = init_distributed(config.device)
        self.device = self.dist.device
        self.amp_dtype = amp_dtype(config.amp, self.device)
        self.student = student.to(self.device)
        self.loss = loss.to(self.device)
        self.weighting = frozen(weighting, self.device)
        self.alignment_weighting = frozen(alignment_weighting, self.device)
        for t in self.teachers:
            frozen(t, self.device)
        # the only owners of T and α: every LossContext reads them from these schedules
        self.temperature_schedule = schedule_from_fields(
            config.temperature_schedule, config.temperature, config.temperature_end, "temperature"
        )
        self.alpha_schedule = schedule_from_fields(
            config.alpha_schedule, config.alpha, config.alpha_end, "alpha"
        )
        self.domain_names = list(domain_names) if domain_names is not None else None
        self.callbacks: list[Callback] = list(callbacks)
        if config.show_progress and not any(isinstance(c, ProgressBar) for c in self.callbacks):
            self.callbacks.insert(0, ProgressBar())
        if config.early_stopping_metric:
            self.callbacks.append(
                EarlyStopping(
                    config.early_stopping_metric,
                    config.early_stopping_patience,
                    config.early_stopping_mode,
                )
            )
        self.stop_training = False
        self.step = 0
        self.epoch = 0
        self.has_validation = False
        self.history = History()
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype is torch.float16)
        self._train_module: nn.Module = _StudentWithLoss(self.student, self.loss)
        self._collate: Collate = default_collate
        self._steps_per_epoch = 0
        self._sampler: ResumableSampler | None = None

    # ------------------------------------------------------------------ public
    @property
    def total_steps(self) -> int:
        """Optimiser steps of the full schedule (``epochs × steps per epoch``)."""
        return self.config.epochs * self._steps_per_epoch

    def steps_in_epoch(self, epoch: int) -> int:
        """Steps left in ``epoch`` (fewer than a full epoch right after a mid-epoch resume)."""
        if self._sampler is None:
            return self._steps_per_epoch
        return math.ceil(len(self._sampler) / self.config.batch_size)

    def fit(
        self,
        train_dataset: Dataset,
        val_dataset: Dataset | None = None,
        collate_fn: Collate | None = None,
        resume_from: str | Path | None = None,
    ) -> History:
        """Train for ``config.epochs`` (or until early stopping / ``max_steps``).

        ``resume_from``: a checkpoint JSON, a checkpoint folder (→ newest), or
        ``"auto"`` (newest in ``config.checkpoint_dir`` if any). Returns the
        :class:`History` (also kept as ``engine.history``).
        """
        cfg = self.config
        if len(train_dataset) == 0:  # type: ignore[arg-type]
            raise DistillError(
                "the training dataset is empty; check the domains and split you loaded"
            )
        seed_everything(cfg.seed)
        self._collate = collate_fn or default_collate
        self.has_validation = val_dataset is not None
        self._sampler = ResumableSampler(train_dataset, self.dist, seed=cfg.seed)  # type: ignore[arg-type]
        self._steps_per_epoch = math.ceil(self._sampler.num_samples / cfg.batch_size)
        loader = self._loader(train_dataset, self._sampler)
        self._setup(train_dataset)
        state = find_state(resume_from, cfg.checkpoint_dir)
        start_epoch, position = 0, 0
        if state is not None:
            hist = restore_state(self._parts(), state, self.dist.world_size)
            self.history = History(
                steps=list(hist.get("steps", [])), epochs=list(hist.get("epochs", []))
            )
            self.step = state.step
            start_epoch, position = state.epoch, state.position
        self.student.train()
        self.loss.train()
        self._emit("on_fit_start")
        for epoch in range(start_epoch, cfg.epochs):
            if self.stop_training:
                break
            self.epoch = epoch
            self._sampler.set_epoch(epoch)
            done = position if epoch == start_epoch else 0
            self._sampler.skip(done * cfg.batch_size)
            self._emit("on_epoch_start", epoch)
            loss_sum = torch.zeros(4, dtype=torch.float64)  # Σ loss·b, Σ correct, Σ labelled, Σ b
            for batch in loader:
                logs, counts = self._train_step(batch)
                loss_sum += counts
                done += 1
                self.history.steps.append({"step": self.step, "epoch": epoch, **logs})
                if self.dist.is_main and self.step % cfg.log_every == 0:
                    log.debug("step %d epoch %d loss %.4f", self.step, epoch + 1, logs["loss"])
                self._emit("on_step_end", self.step, logs)
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint(epoch, done)
                if cfg.max_steps is not None and self.step >= cfg.max_steps:
                    self.history.reached_max_steps = True
                    self.stop_training = True
                    break
                if self.stop_training:
                    break
            if self.history.reached_max_steps:
                break
            self._end_epoch(epoch, loss_sum, val_dataset)
            position = 0
        self.history.stopped_early = self.stop_training and not self.history.reached_max_steps
        if cfg.checkpoint_dir and (not cfg.checkpoint_every or self.step % cfg.checkpoint_every):
            self.save_checkpoint(
                self.epoch,
                position_after_fit(
                    self.history.steps,
                    self.epoch,
                    self.history.reached_max_steps,
                    self._steps_per_epoch,
                ),
            )
        self._emit("on_fit_end", self.history)
        return self.history

    @torch.no_grad()
    def evaluate(
        self,
        dataset: Dataset,
        collate_fn: Collate | None = None,
        ensemble: bool = False,
        domain_names: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Per-domain accuracy / macro-F1 of the student (and the weighted teacher ensemble).

        Returns ``{"student": {"overall": {...}, "<domain>": {...}}, "ensemble": {...}}``;
        under DDP each rank scores a shard and predictions are gathered, so every rank
        returns the same numbers.
        """
        if ensemble and not self.teachers:
            raise DistillError("evaluate(ensemble=True) needs teachers; the engine has none")
        loader = self._loader(
            dataset, ShardSampler(dataset, self.dist), collate_fn or self._collate
        )  # type: ignore[arg-type]
        was_training = self.student.training
        self.student.eval()
        preds, ens_preds, labels, domains = [], [], [], []
        for raw in loader:
            batch = self._to_device(raw)
            with self._autocast():
                out = self.student(batch)
            preds.append(out.logits.argmax(dim=-1))
            labels.append(checks.batch_labels(batch).to(self.device))
            domains.append(batch["domain"].to(self.device))
            if ensemble:
                outs = self._teacher_outputs(batch)
                w = self.weighting(batch["domain"], [o.logits for o in outs])  # type: ignore[misc]
                ens_preds.append(
                    ensemble_probs([o.logits for o in outs], w, self.label_maps).argmax(dim=-1)
                )
        self.student.train(was_training)
        names = list(domain_names or self.domain_names or checks.dataset_domain_names(dataset))
        cat = lambda xs: all_gather_varlen(
            torch.cat(xs) if xs else torch.zeros(0, dtype=torch.long, device=self.device), self.dist
        )
        y, d = cat(labels), cat(domains)
        names += [f"domain_{i}" for i in range(len(names), int(d.max()) + 1 if d.numel() else 0)]
        result = {"student": per_domain_metrics(cat(preds), y, d, names)}
        if ensemble:
            result["ensemble"] = per_domain_metrics(cat(ens_preds), y, d, names)
        return result

    def save_checkpoint(self, epoch: int, position: int) -> Path | None:
        """Write a checkpoint of the current step (rank 0); returns its JSON path there."""
        if not self.config.checkpoint_dir:
            raise DistillError("save_checkpoint needs config.checkpoint_dir; set it to a folder")
        path = None
        if self.dist.is_main:
            path = save_state(
                self._parts(),
                self.config,
                world_size=self.dist.world_size,
                step=self.step,
                epoch=epoch,
                position=position,
                history=self.history.to_dict(),
            )
        barrier(self.dist)
        return path

    # --------------------------------------------------------------- internals
    def _loader(self, dataset: Dataset, sampler: Any, collate: Collate | None = None) -> DataLoader:
        # A private generator: creating an iterator must not draw from the global RNG,
        # or a resumed run would see different random numbers than an uninterrupted one.
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            collate_fn=collate or self._collate,
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.config.seed),
        )

    def _setup(self, dataset: Dataset) -> None:
        """Check shapes on a probe batch, let the loss build its parameters, make optimiser/scheduler/DDP."""
        n = min(self.config.batch_size, len(dataset))  # type: ignore[arg-type]
        batch = self._to_device(self._collate([dataset[i] for i in range(n)]))
        self.student.eval()
        with torch.no_grad():
            with self._autocast():
                out = self.student(batch)
            teachers = self._teacher_outputs(batch, step=0)
            ctx = self._context(batch, teachers, progress=0.0)
        checks.check_student(out, self.label_maps)
        setup = getattr(self.loss, "setup", None)
        if callable(setup):
            setup(dataclasses.replace(ctx, student=out))
            self.loss.to(self.device)
        self.student.train()
        params = [p for m in (self.student, self.loss) for p in m.parameters() if p.requires_grad]
        if not params:
            raise DistillError(
                "the student has no trainable parameters; unfreeze some before distilling"
            )
        self.optimizer = build_optimizer(params, self.config)
        self.scheduler = build_scheduler(self.optimizer, self.config, self.total_steps)
        module: nn.Module = _StudentWithLoss(self.student, self.loss)
        if self.dist.is_distributed:
            module = DistributedDataParallel(
                module,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=self.config.find_unused_parameters,
            )
        if self.config.compile:
            module = torch.compile(module)  # type: ignore[assignment]
        self._train_module = module

    def _train_step(self, raw: Mapping[str, Any]) -> tuple[dict[str, float], Tensor]:
        assert self.optimizer is not None and self.scheduler is not None
        cfg = self.config
        batch = self._to_device(raw)
        progress = self.step / max(1, self.total_steps)
        teachers = self._teacher_outputs(batch, step=self.step + 1)
        ctx = self._context(batch, teachers, progress)
        with self._autocast():
            loss, out = self._train_module(batch, ctx)
        if not bool(torch.isfinite(loss.detach())):
            raise DistillError(
                f"the loss became {float(loss.detach())} at step {self.step + 1}; lower lr (now {cfg.lr}), "
                "set grad_clip, or check the inputs for NaN/inf"
            )
        self.scaler.scale(loss).backward()
        grad_norm: Tensor | None = None
        if cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(
                [p for g in self.optimizer.param_groups for p in g["params"]], cfg.grad_clip
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        self.step += 1
        labels = ctx.labels
        assert labels is not None
        labelled = labels >= 0
        correct = (out.logits.detach().argmax(dim=-1) == labels) & labelled
        n_lab = int(labelled.sum())
        logs = {
            "loss": float(loss.detach()),
            "acc": float(correct.sum()) / n_lab if n_lab else math.nan,
            "lr": float(lr),
            "temperature": float(ctx.temperature),
            "alpha": float(ctx.alpha),
        }
        if grad_norm is not None:
            logs["grad_norm"] = float(grad_norm)  # before clipping
        logs.update({k: float(v) for k, v in getattr(self.loss, "last_terms", {}).items()})
        b = labels.shape[0]
        counts = torch.tensor(
            [logs["loss"] * b, float(correct.sum()), float(n_lab), float(b)], dtype=torch.float64
        )
        return logs, counts

    def _context(
        self, batch: Mapping[str, Any], teachers: list[Any], progress: float
    ) -> LossContext:
        """The batch's LossContext, T and α from the engine's schedules; the student output is
        filled in by the train module (``student=None`` until then)."""
        domain = batch["domain"]
        logits = [o.logits for o in teachers]
        weights = align = None
        if teachers:
            with torch.no_grad():
                weights = self.weighting(domain, logits)  # type: ignore[misc]
                if self.alignment_weighting is not None:
                    align = self.alignment_weighting(domain, logits)
            checks.check_weights(weights, len(teachers), domain.shape[0], "weighting")
            if align is not None:
                checks.check_weights(align, len(teachers), domain.shape[0], "alignment_weighting")
        return LossContext(
            student=None,
            teachers=teachers,
            labels=checks.batch_labels(batch).to(self.device),
            domain=domain,
            teacher_weights=weights,
            alignment_weights=align,
            label_maps=self.label_maps,
            temperature=self.temperature_schedule(progress),
            alpha=self.alpha_schedule(progress),
            task=batch.get("task"),
            step=self.step,
            progress=progress,
        )

    @torch.no_grad()
    def _teacher_outputs(self, batch: Mapping[str, Any], step: int | None = None) -> list[Any]:
        """Run the frozen teachers (fp32 outputs); check shapes and finiteness in one sync."""
        outs = []
        for t in self.teachers:
            with self._autocast():
                o = t(batch)
            outs.append(as_float(o))
        checks.check_teacher_outputs(outs, self.teachers, self.label_maps, batch, step)
        return outs

    def _end_epoch(self, epoch: int, sums: Tensor, val_dataset: Dataset | None) -> None:
        sums = all_reduce_sum(sums.to(self.device), self.dist).cpu()
        logs: dict[str, float] = {
            "train_loss": float(sums[0] / sums[3]) if float(sums[3]) else math.nan,
            "train_acc": float(sums[1] / sums[2]) if float(sums[2]) else math.nan,
        }
        ev = self.config.eval_every
        if (
            val_dataset is not None
            and ev
            and ((epoch + 1) % ev == 0 or epoch + 1 == self.config.epochs)
        ):
            metrics = self.evaluate(val_dataset)
            logs.update(flatten_metrics(metrics["student"], "val"))
        self._emit("on_epoch_end", epoch, logs)
        self.history.epochs.append({"epoch": epoch, **logs})
        if self.dist.is_main:
            summary = ", ".join(f"{k}={v:.4f}" for k, v in logs.items() if k.count("/") < 2)
            log.info("epoch %d/%d: %s", epoch + 1, self.config.epochs, summary)

    def _parts(self) -> TrainingParts:
        """The pieces a checkpoint saves and restores (after ``_setup`` built the optimiser)."""
        assert self.optimizer is not None and self.scheduler is not None
        return TrainingParts(self.student, self.loss, self.optimizer, self.scheduler, self.scaler)

    def _emit(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            if self.dist.is_main or not cb.main_process_only:
                getattr(cb, hook)(self, *args)

    def _autocast(self) -> Any:
        return autocast(self.device, self.amp_dtype)

    def _to_device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        return to_device(batch, self.device)
