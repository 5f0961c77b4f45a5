"""Engine features users rely on: logs, early stopping, per-domain metrics, compression
report, gradient clipping, CPU autocast — and one clear kgkd error per bad input.

Most tests use the tiny deterministic point problem of ``_tiny_problem`` (real engine,
real losses, real ``ModuleTeacher``s); the compression report uses the real ccexam
teachers and the real DigitStudent.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import default_collate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tiny_problem import LABELS, PointDataset, TinyStudent, label_maps, make_teachers

from kgkd.distill.callbacks import CSVLogger, EarlyStopping, TensorBoardLogger
from kgkd.distill.config import EngineConfig
from kgkd.distill.engine import DistillationEngine
from kgkd.distill.evaluation import compression_report
from kgkd.distill.losses import build_loss
from kgkd.distill.weighting import UniformWeighting
from kgkd.errors import ConfigError, DistillError
from kgkd.labels import LabelMap
from kgkd.models.base import ModelOutput


def make_engine(
    student: nn.Module | None = None, teachers: list[Any] | None = None, **options: Any
) -> DistillationEngine:
    """Tiny-problem engine: two teachers, ``combined`` loss, uniform weights, quiet."""
    torch.manual_seed(0)
    teachers = make_teachers() if teachers is None else teachers
    config = EngineConfig.from_dict(
        {"epochs": 2, "batch_size": 8, "show_progress": False, **options}
    )
    return DistillationEngine(
        student or TinyStudent(),
        teachers,
        build_loss("combined"),
        UniformWeighting(len(teachers)),
        config,
        label_maps(teachers),
    )


# --------------------------------------------------------------------------- logs
def test_csv_and_tensorboard_logs_have_every_step_and_epoch(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    teachers = make_teachers()
    torch.manual_seed(0)
    engine = DistillationEngine(
        TinyStudent(), teachers, build_loss("combined"), UniformWeighting(2),
        EngineConfig(epochs=3, batch_size=8, log_every=1, show_progress=False),
        label_maps(teachers), callbacks=[CSVLogger(tmp_path / "csv"), TensorBoardLogger(tmp_path / "tb")],
    )  # fmt: skip
    history = engine.fit(PointDataset(n=40), val_dataset=PointDataset(n=24, seed=5))
    assert len(history.steps) == 15  # 40 / 8 × 3

    with open(tmp_path / "csv" / "steps.csv", newline="") as fh:
        steps = list(csv.DictReader(fh))
    assert len(steps) == 15
    for column in ("step", "loss", "acc", "lr", "temperature", "alpha", "grad_norm", "kd", "ce"):
        assert column in steps[0], column
    assert [int(r["step"]) for r in steps] == list(range(1, 16))
    assert [float(r["loss"]) for r in steps] == pytest.approx(history.losses())
    with open(tmp_path / "csv" / "epochs.csv", newline="") as fh:
        epochs = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in epochs] == [0, 1, 2]
    for column in (
        "train_loss",
        "train_acc",
        "val/accuracy",
        "val/macro_f1",
        "val/left/accuracy",
        "val/right/macro_f1",
    ):
        assert column in epochs[0], column
    assert float(epochs[-1]["val/accuracy"]) == pytest.approx(history.epochs[-1]["val/accuracy"])

    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"train/loss", "train/lr", "val/accuracy", "epoch/train_loss"} <= set(tags)
    loss_events = acc.Scalars("train/loss")
    assert [e.step for e in loss_events] == list(range(1, 16))
    assert [e.value for e in loss_events] == pytest.approx(history.losses(), rel=1e-6)
    assert [e.step for e in acc.Scalars("val/accuracy")] == [1, 2, 3]


# ------------------------------------------------------------------ early stopping
def test_early_stopping_stops_when_patience_is_exceeded() -> None:
    """With a learning rate too small to change predictions the validation accuracy stays flat:
    best at epoch 1, no improvement in epochs 2 and 3 → patience 2 stops after 3 of 6 epochs."""
    engine = make_engine(
        epochs=6, lr=1e-9, early_stopping_metric="val/accuracy", early_stopping_patience=2
    )
    history = engine.fit(PointDataset(n=32), val_dataset=PointDataset(n=24, seed=5))
    assert history.stopped_early and not history.reached_max_steps
    assert len(history.epochs) == 3 and len(history.steps) == 3 * 4
    stopper = next(c for c in engine.callbacks if isinstance(c, EarlyStopping))
    assert stopper.best_epoch == 0 and stopper.bad_epochs == 2

    # the same run without early stopping trains all 6 epochs
    full = make_engine(epochs=6, lr=1e-9).fit(
        PointDataset(n=32), val_dataset=PointDataset(n=24, seed=5)
    )
    assert len(full.epochs) == 6 and not full.stopped_early


def test_early_stopping_on_unknown_metric_names_the_metrics() -> None:
    engine = make_engine(early_stopping_metric="val/acc")
    with pytest.raises(
        DistillError, match=r"metric 'val/acc' is not among the epoch metrics .*val/accuracy"
    ):
        engine.fit(PointDataset(n=16), val_dataset=PointDataset(n=8, seed=5))


# ---------------------------------------------------------------------- evaluation
def _macro_f1_by_hand(p: np.ndarray, y: np.ndarray) -> float:
    """Mean over the classes present in labels or predictions of 2·TP / (2·TP + FP + FN)."""
    scores = []
    for c in sorted(set(p.tolist()) | set(y.tolist())):
        tp = int(((p == c) & (y == c)).sum())
        fp = int(((p == c) & (y != c)).sum())
        fn = int(((p != c) & (y == c)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def test_per_domain_evaluation_matches_a_hand_computation() -> None:
    engine = make_engine(epochs=1)
    train, test = PointDataset(n=32), PointDataset(n=60, seed=9)
    engine.fit(train)
    result = engine.evaluate(test, ensemble=True)

    # the reference is batched as evaluate() batches (config.batch_size, in order): a different
    # batching may round differently on another CPU/BLAS and flip a near-tied argmax
    size = engine.config.batch_size
    batches = [default_collate([test[i] for i in range(j, min(j + size, len(test)))]) for j in range(0, len(test), size)]
    with torch.no_grad():
        preds = torch.cat([engine.student.eval()(b).logits.argmax(-1) for b in batches]).numpy()
        probs = [torch.cat([torch.softmax(t(b).logits, -1) for b in batches]) for t in engine.teachers]
    ens_preds = ((probs[0] + probs[1]) / 2).argmax(-1).numpy()
    y, d = test.y.numpy(), test.d.numpy()
    for key, p in (("student", preds), ("ensemble", ens_preds)):
        for name, rows in (("overall", d >= 0), ("left", d == 0), ("right", d == 1)):
            got = result[key][name]
            assert got["n"] == rows.sum()
            assert got["accuracy"] == pytest.approx(float((p[rows] == y[rows]).mean()), abs=1e-12)
            assert got["macro_f1"] == pytest.approx(_macro_f1_by_hand(p[rows], y[rows]), abs=1e-12)
    # unlabelled samples (-1) are left out of the scores
    partly = engine.evaluate(PointDataset(n=60, seed=9, unlabelled_from=40))
    assert partly["student"]["overall"]["n"] == 40


def test_compression_report_student_vs_ccexam_ensemble() -> None:
    from kgkd.data import ImageCollator, load_domain
    from kgkd.models import DigitStudent, count_parameters, load_ccexam_teacher

    student = DigitStudent()
    teachers = [load_ccexam_teacher("mnist"), load_ccexam_teacher("usps")]
    data = load_domain("mnist", "test", limit=32)
    batch = ImageCollator(28)([data[i] for i in range(32)])
    report = compression_report(student, teachers, batch, repeats=3)
    s, e = report["student"], report["ensemble"]
    assert s["params"] == count_parameters(student) and e["params"] == sum(
        map(count_parameters, teachers)
    )
    assert 0 < s["params"] < e["params"]
    for row in (s, e):
        # fp32 safetensors: 4 bytes a parameter plus a small JSON header
        assert 4 * row["params"] <= row["size_mb"] * 2**20 <= 4 * row["params"] + 64 * 1024
        assert row["latency_ms"] > 0 and row["throughput"] > 0
        assert row["throughput"] == pytest.approx(32 / (row["latency_ms"] / 1000), rel=1e-6)
    assert report["ratio"]["params"] == pytest.approx(e["params"] / s["params"])
    assert report["ratio"]["size"] > 1


# ------------------------------------------------------------------ clip and AMP
def _one_sgd_step(grad_clip: float | None) -> tuple[float, float | None]:
    """Norm of the parameter change of one SGD step (lr 1) and the logged pre-clip grad norm."""
    engine = make_engine(
        optimizer="sgd",
        lr=1.0,
        momentum=0.0,
        scheduler="constant",
        grad_clip=grad_clip,
        max_steps=1,
    )
    before = torch.cat([p.detach().flatten().clone() for p in engine.student.parameters()])
    history = engine.fit(PointDataset(n=16))
    after = torch.cat([p.detach().flatten() for p in engine.student.parameters()])
    return float((after - before).norm()), history.steps[0].get("grad_norm")


def test_gradient_clipping_bounds_the_update() -> None:
    free_change, free_norm = _one_sgd_step(grad_clip=1e6)
    assert free_norm is not None and free_norm > 0.01
    assert free_change == pytest.approx(free_norm, rel=1e-5)  # nothing clipped: step = gradient
    clipped_change, clipped_norm = _one_sgd_step(grad_clip=0.01)
    assert clipped_norm == pytest.approx(free_norm, rel=1e-6)  # same seed, same gradient
    assert clipped_change == pytest.approx(0.01, rel=1e-4)  # the step is cut to the clip norm


class DtypeRecorder(TinyStudent):
    """TinyStudent that remembers the dtype of its logits (to see autocast at work)."""

    seen: set[torch.dtype]

    def forward(self, batch: dict[str, Tensor]) -> ModelOutput:
        out = super().forward(batch)
        self.seen = {*getattr(self, "seen", set()), out.logits.dtype}
        return out


def test_amp_on_cpu_bf16_autocasts_and_fp16_is_refused() -> None:
    student = DtypeRecorder()
    engine = make_engine(student=student, amp="bf16", device="cpu")
    assert engine.amp_dtype is torch.bfloat16
    history = engine.fit(PointDataset(n=32))
    assert student.seen == {torch.bfloat16}
    assert all(np.isfinite(history.losses()))
    assert all(p.dtype is torch.float32 for p in student.parameters())  # weights stay fp32

    default = DtypeRecorder()
    make_engine(student=default, device="cpu").fit(PointDataset(n=16))  # amp="auto": fp32 on CPU
    assert default.seen == {torch.float32}

    with pytest.raises(ConfigError, match=r"amp='fp16' needs a CUDA device .* use amp='bf16'"):
        make_engine(amp="fp16", device="cpu")


# ------------------------------------------------------------------- bad inputs
class FixedWeights(nn.Module):
    """A weighting returning a constant tensor (shape or values chosen by the test)."""

    def __init__(self, row: list[float]) -> None:
        super().__init__()
        self.row = torch.tensor(row)

    def forward(self, domain: Tensor, teacher_logits: list[Tensor]) -> Tensor:
        return self.row.expand(domain.shape[0], -1)


def _engine_with(weighting: nn.Module) -> DistillationEngine:
    teachers = make_teachers()
    return DistillationEngine(
        TinyStudent(), teachers, build_loss("combined"), weighting,
        EngineConfig(show_progress=False, batch_size=8), label_maps(teachers),
    )  # fmt: skip


def test_bad_teacher_weights_raise_clear_errors() -> None:
    with pytest.raises(DistillError, match=r"teacher weights of shape \(8, 3\); expected \[8, 2\]"):
        _engine_with(FixedWeights([0.2, 0.3, 0.5])).fit(PointDataset(n=16))
    with pytest.raises(DistillError, match=r"negative or NaN/inf teacher weights"):
        _engine_with(FixedWeights([1.5, -0.5])).fit(PointDataset(n=16))
    with pytest.raises(DistillError, match=r"built for 3 teachers but the engine has 2"):
        _engine_with(UniformWeighting(3))
    teachers = make_teachers()
    with pytest.raises(
        DistillError, match=r"teachers but no weighting; pass e\.g\. UniformWeighting"
    ):
        DistillationEngine(
            TinyStudent(),
            teachers,
            build_loss("combined"),
            None,
            EngineConfig(),
            label_maps(teachers),
        )


def test_label_map_mismatches_raise_clear_errors() -> None:
    teachers = make_teachers()
    loss, weights, cfg = (
        build_loss("combined"),
        UniformWeighting(2),
        EngineConfig(show_progress=False),
    )
    with pytest.raises(
        DistillError, match=r"2 teachers but 1 label maps; give exactly one LabelMap per teacher"
    ):
        DistillationEngine(TinyStudent(), teachers, loss, weights, cfg, label_maps(teachers)[:1])
    four = LabelMap.identity(("a", "b", "c", "d"), teacher="teacher_0")
    with pytest.raises(
        DistillError, match=r"teacher 'teacher_0' predicts 3 labels but its label map lists 4"
    ):
        DistillationEngine(
            TinyStudent(), teachers, loss, weights, cfg, [four, label_maps(teachers)[1]]
        )
    other = LabelMap.by_name(LABELS, ("a", "b", "z"), teacher="teacher_1")
    with pytest.raises(DistillError, match=r"label maps target different student label sets"):
        DistillationEngine(
            TinyStudent(), teachers, loss, weights, cfg, [label_maps(teachers)[0], other]
        )
    wide = LabelMap.by_name(LABELS, ("a", "b", "c", "d"), teacher="teacher_0")
    wide1 = LabelMap.by_name(LABELS, ("a", "b", "c", "d"), teacher="teacher_1")
    engine = DistillationEngine(TinyStudent(), teachers, loss, weights, cfg, [wide, wide1])
    with pytest.raises(
        DistillError, match=r"student returned logits of shape \(16, 3\) but the label maps have 4"
    ):
        engine.fit(PointDataset(n=16))


class NaNTeacher(nn.Module):
    """A 3-label teacher whose logits are NaN on samples with index ≥ 10."""

    name, label_names, num_labels = "broken", LABELS, 3

    def forward(self, batch: dict[str, Tensor]) -> ModelOutput:
        logits = torch.zeros(batch["x"].shape[0], 3)
        logits[batch["index"] >= 10] = float("nan")
        return ModelOutput(logits, {})


def test_nan_teacher_outputs_name_teacher_and_samples() -> None:
    teacher = NaNTeacher()
    engine = DistillationEngine(
        TinyStudent(), [teacher], build_loss("combined"), UniformWeighting(1),
        EngineConfig(show_progress=False, batch_size=16), [LabelMap.identity(LABELS, teacher="broken")],
    )  # fmt: skip
    with pytest.raises(
        DistillError,
        match=r"teacher 'broken' returned NaN/inf logits at step 0 \(dataset indices \[10, 11",
    ):
        engine.fit(PointDataset(n=16))


def test_other_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(DistillError, match="training dataset is empty"):
        make_engine().fit(PointDataset(n=0))
    no_labels = lambda items: {k: v for k, v in default_collate(items).items() if k != "labels"}
    with pytest.raises(DistillError, match=r"a batch has no 'labels' tensor .*use a kgkd collator"):
        make_engine().fit(PointDataset(n=16), collate_fn=no_labels)
    with pytest.raises(DistillError, match=r"evaluate\(ensemble=True\) needs teachers"):
        DistillationEngine(
            TinyStudent(), [], build_loss("ce"), None, EngineConfig(show_progress=False), []
        ).evaluate(PointDataset(n=8), ensemble=True)
    nan_inputs = PointDataset(n=16)
    nan_inputs.x[3] = float("nan")
    plain = DistillationEngine(
        TinyStudent(), [], build_loss("ce"), None, EngineConfig(show_progress=False), []
    )
    with pytest.raises(
        DistillError,
        match=r"the loss became nan at step 1; lower lr .* check the inputs for NaN/inf",
    ):
        plain.fit(nan_inputs)
    with pytest.raises(
        ConfigError, match=r"unknown engine config key 'learning_rate'.*Did you mean 'lr'"
    ):
        EngineConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ConfigError, match=r"engine config key 'epochs' must be an integer, got '3'"):
        EngineConfig.from_dict({"epochs": "3"})
