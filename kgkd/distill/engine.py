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

from kgkd.distill import checkpoint as ckpt
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
from kgkd.distill.evaluation import ensemble_probs, per_domain_metrics
from kgkd.distill.schedules import Schedule, build_schedule
from kgkd.errors import CheckpointError, ConfigError, DistillError
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

    def forward(self, batch: dict[str, Any], fields: dict[str, Any]) -> tuple[Tensor, Any]:
        out = self.student(batch)
        return self.loss(LossContext(student=out, **fields)), out


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
        _check_label_maps(self.teachers, self.label_maps)
        if self.teachers and weighting is None:
            raise DistillError(
                "the engine got teachers but no weighting; pass e.g. UniformWeighting(len(teachers))"
            )
        for what, module in (
            ("weighting", weighting),
            ("alignment_weighting", alignment_weighting),
        ):
            n = getattr(module, "num_teachers", None)
            if isinstance(n, int) and n != len(self.teachers):
                raise DistillError(
                    f"the engine's {what} ({type(module).__name__}) was built for {n} teachers but the "
                    f"engine has {len(self.teachers)}; build it with the engine's teacher list"
                )
        self.dist: DistContext = init_distributed(config.device)
        self.device = self.dist.device
        self.amp_dtype = _amp_dtype(config.amp, self.device)
        self.student = student.to(self.device)
        self.loss = loss.to(self.device)
        self.weighting = _frozen(weighting, self.device)
        self.alignment_weighting = _frozen(alignment_weighting, self.device)
        for t in self.teachers:
            _frozen(t, self.device)
        self._temperature = _make_schedule(
            config.temperature_schedule, config.temperature, config.temperature_end, "temperature"
        )
        self._alpha = _make_schedule(config.alpha_schedule, config.alpha, config.alpha_end, "alpha")
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
        state = self._resolve_resume(resume_from)
        start_epoch, position = 0, 0
        if state is not None:
            start_epoch, position = self._restore(state)
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
            self.save_checkpoint(self.epoch, self._position_after_fit())
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
            labels.append(_labels(batch).to(self.device))
            domains.append(batch["domain"].to(self.device))
            if ensemble:
                outs = self._teacher_outputs(batch)
                w = self.weighting(batch["domain"], [o.logits for o in outs])  # type: ignore[misc]
                ens_preds.append(
                    ensemble_probs([o.logits for o in outs], w, self.label_maps).argmax(dim=-1)
                )
        self.student.train(was_training)
        names = list(domain_names or self.domain_names or _domain_names(dataset))
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
            assert self.optimizer is not None and self.scheduler is not None
            opt_tensors, opt_meta = ckpt.flatten_optimizer(self.optimizer.state_dict())
            tensors = {
                **{f"student/{k}": v for k, v in self.student.state_dict().items()},
                **{f"loss/{k}": v for k, v in self.loss.state_dict().items()},
                **opt_tensors,
            }
            meta = {
                "world_size": self.dist.world_size,
                "sampler_seed": self.config.seed,
                "config": self.config.to_dict(),
                "optimizer": opt_meta,
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "history": self.history.to_dict(),
            }
            path = ckpt.save_checkpoint(
                self.config.checkpoint_dir,
                step=self.step,
                epoch=epoch,
                position=position,
                tensors=tensors,
                meta=meta,
                keep=self.config.keep_checkpoints,
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
            fields = self._context_fields(batch, teachers, progress=0.0)
        _check_student(out, self.label_maps)
        setup = getattr(self.loss, "setup", None)
        if callable(setup):
            setup(LossContext(student=out, **fields))
            self.loss.to(self.device)
        self.student.train()
        params = [p for m in (self.student, self.loss) for p in m.parameters() if p.requires_grad]
        if not params:
            raise DistillError(
                "the student has no trainable parameters; unfreeze some before distilling"
            )
        self.optimizer = _build_optimizer(params, self.config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            LRFactor(self.config.scheduler, self.config.warmup_steps, self.total_steps),
        )
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
        fields = self._context_fields(batch, teachers, progress)
        with self._autocast():
            loss, out = self._train_module(batch, fields)
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
        labels = fields["labels"]
        labelled = labels >= 0
        correct = (out.logits.detach().argmax(dim=-1) == labels) & labelled
        n_lab = int(labelled.sum())
        logs = {
            "loss": float(loss.detach()),
            "acc": float(correct.sum()) / n_lab if n_lab else math.nan,
            "lr": float(lr),
            "temperature": float(fields["temperature"]),
            "alpha": float(fields["alpha"]),
        }
        if grad_norm is not None:
            logs["grad_norm"] = float(grad_norm)  # before clipping
        logs.update({k: float(v) for k, v in getattr(self.loss, "last_terms", {}).items()})
        b = labels.shape[0]
        counts = torch.tensor(
            [logs["loss"] * b, float(correct.sum()), float(n_lab), float(b)], dtype=torch.float64
        )
        return logs, counts

    def _context_fields(
        self, batch: Mapping[str, Any], teachers: list[Any], progress: float
    ) -> dict[str, Any]:
        """Everything of the LossContext but the student output."""
        domain = batch["domain"]
        logits = [o.logits for o in teachers]
        weights = align = None
        if teachers:
            with torch.no_grad():
                weights = self.weighting(domain, logits)  # type: ignore[misc]
                if self.alignment_weighting is not None:
                    align = self.alignment_weighting(domain, logits)
            _check_weights(weights, len(teachers), domain.shape[0], "weighting")
            if align is not None:
                _check_weights(align, len(teachers), domain.shape[0], "alignment_weighting")
        return {
            "teachers": teachers,
            "labels": _labels(batch).to(self.device),
            "domain": domain,
            "teacher_weights": weights,
            "alignment_weights": align,
            "label_maps": self.label_maps,
            "temperature": self._temperature(progress),
            "alpha": self._alpha(progress),
            "task": batch.get("task"),
            "step": self.step,
            "progress": progress,
        }

    @torch.no_grad()
    def _teacher_outputs(self, batch: Mapping[str, Any], step: int | None = None) -> list[Any]:
        """Run the frozen teachers (fp32 outputs); check shapes and finiteness in one sync."""
        outs = []
        for t in self.teachers:
            with self._autocast():
                o = t(batch)
            outs.append(_as_float(o))
        if not outs:
            return outs
        finite = torch.stack([torch.isfinite(o.logits).all() for o in outs]).tolist()
        for o, ok, lmap, teacher in zip(outs, finite, self.label_maps, self.teachers):
            name = getattr(teacher, "name", lmap.teacher)
            if o.logits.dim() != 2 or o.logits.shape[-1] != lmap.num_teacher_labels:
                raise DistillError(
                    f"teacher '{name}' returned logits of shape {tuple(o.logits.shape)} but its label map lists "
                    f"{lmap.num_teacher_labels} teacher labels; give the label map of this teacher's label set"
                )
            if not ok:
                where = f" at step {step}" if step is not None else ""
                bad = batch.get("index")
                rows = (~torch.isfinite(o.logits)).any(dim=-1)
                idx = bad[rows.to(bad.device)][:5].tolist() if isinstance(bad, Tensor) else "?"
                raise DistillError(
                    f"teacher '{name}' returned NaN/inf logits{where} (dataset indices {idx}); "
                    "check its inputs and weights, or rebuild its cache"
                )
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

    def _resolve_resume(self, resume_from: str | Path | None) -> ckpt.TrainingState | None:
        if resume_from is None:
            return None
        if str(resume_from) == "auto":
            if not self.config.checkpoint_dir:
                raise DistillError("resume_from='auto' needs config.checkpoint_dir")
            newest = ckpt.latest_checkpoint(self.config.checkpoint_dir)
            return None if newest is None else ckpt.load_checkpoint(newest)
        return ckpt.load_checkpoint(resume_from)

    def _restore(self, state: ckpt.TrainingState) -> tuple[int, int]:
        """Put a checkpoint back; return ``(epoch, position)`` to continue from."""
        assert self.optimizer is not None and self.scheduler is not None
        where = state.meta.get("tensor_file", "checkpoint")
        if state.meta.get("world_size") != self.dist.world_size:
            raise CheckpointError(
                f"checkpoint '{where}' was written by {state.meta.get('world_size')} process(es) but this run has "
                f"{self.dist.world_size}; resume with the same --nproc_per_node so the data order matches"
            )
        try:
            self.student.load_state_dict(state.module_state("student"))
            self.loss.load_state_dict(state.module_state("loss"))
            self.optimizer.load_state_dict(
                ckpt.unflatten_optimizer(state.tensors, state.meta["optimizer"])
            )
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint '{where}' does not fit this student/loss/optimiser: {exc}; "
                "resume with the same model and loss that wrote it"
            ) from None
        self.scheduler.load_state_dict(state.meta["scheduler"])
        self.scaler.load_state_dict(state.meta.get("scaler") or {})
        hist = state.meta.get("history") or {}
        self.history = History(
            steps=list(hist.get("steps", [])), epochs=list(hist.get("epochs", []))
        )
        self.step = state.step
        ckpt.restore_rng(state.tensors, state.meta["rng"])
        log.info(
            "resumed from step %d (epoch %d, batch %d)", state.step, state.epoch + 1, state.position
        )
        return state.epoch, state.position

    def _position_after_fit(self) -> int:
        return (
            sum(1 for s in self.history.steps if s["epoch"] == self.epoch)
            if self.history.reached_max_steps
            else self._steps_per_epoch
        )

    def _emit(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            if self.dist.is_main or not cb.main_process_only:
                getattr(cb, hook)(self, *args)

    def _autocast(self) -> Any:
        return torch.autocast(
            device_type=self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        )

    def _to_device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        return {
            k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v
            for k, v in batch.items()
        }


# ----------------------------------------------------------------------- helpers
class LRFactor:
    """LR multiplier per step: linear warm-up, then cosine / linear decay to 0, or constant.

    A plain object (not a closure) so the scheduler's state stays JSON-serialisable.
    """

    def __init__(self, kind: str, warmup_steps: int, total_steps: int) -> None:
        self.kind = kind
        self.warmup_steps = warmup_steps
        self.total_steps = max(1, total_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.kind == "constant":
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        t = min(1.0, (step - self.warmup_steps) / span)
        if self.kind == "linear":
            return 1.0 - t
        return 0.5 * (1.0 + math.cos(math.pi * t))


def _build_optimizer(params: list[nn.Parameter], cfg: EngineConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _make_schedule(kind: str, start: float, end: float | None, what: str) -> Schedule:
    """A T/α schedule from the config fields (``end=None``: constant at ``start``)."""
    if end is None or kind == "constant":
        return build_schedule(float(start), what)
    return build_schedule({"name": kind, "start": start, "end": end}, what)


def _amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``config.amp`` on ``device``.

    CUDA: ``auto`` → bf16 where supported, else fp16; ``bf16`` / ``fp16`` as asked.
    CPU: ``auto`` and ``off`` run fp32 (CPU autocast rarely pays off for small models);
    ``bf16`` runs CPU bf16 autocast; ``fp16`` is refused with a ConfigError, because
    fp16 training needs a CUDA gradient scaler.
    """
    if amp == "off":
        return None
    if device.type == "cuda":
        if amp == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if amp == "bf16" else torch.float16
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        raise ConfigError(
            f"engine config amp='fp16' needs a CUDA device but this run is on {device.type}; "
            "use amp='bf16' (CPU bf16 autocast) or amp='off' on CPU"
        )
    return None


def _frozen(module: nn.Module | None, device: torch.device) -> Any:
    """Move a teacher/weighting to ``device``, eval mode, no gradients."""
    if module is None:
        return None
    module.to(device).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _check_label_maps(teachers: Sequence[nn.Module], label_maps: Sequence[LabelMap]) -> None:
    if len(label_maps) != len(teachers):
        raise DistillError(
            f"the engine got {len(teachers)} teachers but {len(label_maps)} label maps; "
            "give exactly one LabelMap per teacher, in the same order"
        )
    for teacher, lmap in zip(teachers, label_maps):
        name = getattr(teacher, "name", lmap.teacher)
        n = getattr(teacher, "num_labels", None)
        if isinstance(n, int) and n != lmap.num_teacher_labels:
            raise DistillError(
                f"teacher '{name}' predicts {n} labels but its label map lists {lmap.num_teacher_labels} "
                f"teacher labels {list(lmap.teacher_labels)}; build the label map from this teacher's label set"
            )
    students = {lm.student_labels for lm in label_maps}
    if len(students) > 1:
        raise DistillError(
            f"the label maps target different student label sets {sorted(map(list, students))}; "
            "map every teacher into the same student labels"
        )


def _check_student(out: Any, label_maps: Sequence[LabelMap]) -> None:
    if not label_maps:
        return
    n = label_maps[0].num_student_labels
    if out.logits.dim() != 2 or out.logits.shape[-1] != n:
        raise DistillError(
            f"the student returned logits of shape {tuple(out.logits.shape)} but the label maps have {n} "
            f"student labels {list(label_maps[0].student_labels)}; give the student {n} outputs"
        )


def _check_weights(w: Tensor, t: int, b: int, who: str) -> None:
    if w.shape != (b, t):
        raise DistillError(
            f"{who} returned teacher weights of shape {tuple(w.shape)}; expected [{b}, {t}] "
            "(one row per sample, one column per teacher)"
        )
    if not bool(torch.isfinite(w).all() & (w >= 0).all()):
        raise DistillError(
            f"{who} returned negative or NaN/inf teacher weights (min {float(w.min()):.4g}); "
            "teacher weights must be finite and ≥ 0 (rows summing to 1, e.g. a softmax)"
        )


def _labels(batch: Mapping[str, Any]) -> Tensor:
    labels = batch.get("labels", batch.get("label"))
    if not isinstance(labels, Tensor):
        raise DistillError(
            f"a batch has no 'labels' tensor (keys: {sorted(batch)}); use a kgkd collator "
            "(ImageCollator / TextCollator) or give -1 labels for unlabelled data"
        )
    return labels.long()


def _as_float(out: Any) -> Any:
    """Teacher output with fp32 logits/features (caches may store fp16)."""
    logits = out.logits.float()
    features = {
        k: v.float() if v.is_floating_point() else v for k, v in (out.features or {}).items()
    }
    if dataclasses.is_dataclass(out):
        return dataclasses.replace(out, logits=logits, features=features)
    return type(out)(logits, features)


def _domain_names(dataset: Any) -> list[str]:
    names = getattr(dataset, "domain_names", None)
    if isinstance(names, (list, tuple)):
        return list(names)
    name = getattr(dataset, "name", None)
    if isinstance(name, str):
        return [f"domain_{i}" for i in range(getattr(dataset, "domain_id", 0))] + [name]
    return []
