"""DistillationEngine on real data: two ccexam digit teachers → a small DigitStudent.

These are the issue's "done when" checks: distillation must beat label-only training
of the same CNN on real MNIST / UCI digits, and reading teachers from a cache must give
the same loss curve as running them live.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from kgkd.data import ImageCollator, MultiDomainDataset
from kgkd.distill.cache import CachedTeacher, TeacherCache
from kgkd.distill.config import EngineConfig
from kgkd.distill.engine import DistillationEngine
from kgkd.distill.losses import build_loss
from kgkd.distill.weighting import UniformWeighting
from kgkd.labels import LabelMap
from kgkd.models import DigitStudent, DigitStudentConfig, load_ccexam_teacher

DIGITS = tuple(str(d) for d in range(10))



class KeepLabels(Dataset):
    """A view of ``dataset`` in which only the items in ``keep`` carry their label (others −1)."""

    def __init__(self, dataset: MultiDomainDataset, keep: np.ndarray) -> None:
        self.dataset = dataset
        self.keep = {int(i) for i in keep}
        self.domain_names = dataset.domain_names

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.dataset[i]
        if i not in self.keep:
            item["label"] = -1
        return item


def few_labels(
    dataset: MultiDomainDataset, per_class: int, domain: int, seed: int = 0
) -> np.ndarray:
    """Seeded choice of ``per_class`` items of each class from domain ``domain``."""
    rng = np.random.default_rng(seed)
    y, d = dataset.labels, dataset.domains
    return np.concatenate(
        [
            rng.choice(np.flatnonzero((y == c) & (d == domain)), per_class, replace=False)
            for c in range(10)
        ]
    )


def small_student(seed: int = 0) -> DigitStudent:
    """The DigitStudent of these tests (16 px input, global pool as when the margins were measured), seeded."""
    torch.manual_seed(seed)
    return DigitStudent(DigitStudentConfig(input_size=16, channels=(8, 16, 32), dim=64, grid=1))


def digit_teachers() -> list[Any]:
    return [load_ccexam_teacher("mnist"), load_ccexam_teacher("usps")]


def test_distilling_two_digit_teachers_beats_label_only_training(
    tmp_path: Path, one_thread: None
) -> None:
    """KD from the ccexam MNIST + USPS nets beats CE on the few labels by ≥ 0.15 test accuracy.

    Transfer set: 200 MNIST + 200 UCI train images; only 2 MNIST images per class keep their
    label (20 labels), the UCI domain is entirely unlabelled. Both students are the same
    DigitStudent (16 px input, channels 8/16/32, 8.7k parameters vs 573k for the two
    teachers), same seed, same 105 steps (15 epochs of
    batch 64). KD uses ``combined`` (α = 0.5, T = 2, α·KD + (1−α)·CE on labelled rows, KD on
    the rest) with uniform teacher weights and cached teacher outputs; the baseline uses
    ``ce`` (which skips the −1 labels). Test set: 300 MNIST + 300 UCI held-out test images.

    Measured (1 thread): KD 0.618 overall (MNIST 0.653, UCI 0.583) vs label-only 0.252
    (MNIST 0.340, UCI 0.163): +0.37; the teacher ensemble scores 0.798. The test asks for
    +0.15 overall and a gain on each domain, leaving headroom for BLAS differences between
    machines. 9–19 s on 2 busy cores.
    """
    train = MultiDomainDataset(["mnist", "uci_digits"], "train", limit=200)
    test = MultiDomainDataset(["mnist", "uci_digits"], "test", limit=300)
    transfer = KeepLabels(train, few_labels(train, per_class=2, domain=0))
    collate = ImageCollator(size=28)
    teachers = digit_teachers()
    cached = [
        CachedTeacher(
            TeacherCache.build(
                t, train, collate, path=tmp_path / f"{t.name}.safetensors", show_progress=False
            )
        )
        for t in teachers
    ]
    maps = [LabelMap.identity(DIGITS, teacher=t.name) for t in teachers]
    cfg = EngineConfig(
        epochs=15,
        batch_size=64,
        lr=1e-2,
        grad_clip=5.0,
        temperature=2.0,
        alpha=0.5,
        seed=0,
        show_progress=False,
    )

    kd = DistillationEngine(
        small_student(), cached, build_loss("combined"), UniformWeighting(2), cfg, maps
    )
    kd_hist = kd.fit(transfer, collate_fn=collate)
    baseline = DistillationEngine(small_student(), [], build_loss("ce"), None, cfg, [])
    ce_hist = baseline.fit(transfer, collate_fn=collate)
    assert len(kd_hist.steps) == len(ce_hist.steps) == 105

    # the caches cover the transfer set only; score the ensemble with the live teachers
    live = DistillationEngine(
        kd.student, teachers, build_loss("combined"), UniformWeighting(2), cfg, maps
    )
    kd_scores = live.evaluate(test, collate, ensemble=True)
    ce_scores = baseline.evaluate(test, collate)["student"]
    student = kd_scores["student"]
    assert student["overall"]["n"] == ce_scores["overall"]["n"] == 600
    assert student["overall"]["accuracy"] >= ce_scores["overall"]["accuracy"] + 0.15, (
        student,
        ce_scores,
    )
    for domain in ("mnist", "uci_digits"):
        assert student[domain]["accuracy"] > ce_scores[domain]["accuracy"], (
            domain,
            student,
            ce_scores,
        )
    # the teachers it learnt from are better still (the student is 66x smaller and saw 20 labels)
    assert kd_scores["ensemble"]["overall"]["accuracy"] > student["overall"]["accuracy"]
    assert kd_hist.epochs[-1]["train_loss"] < 0.5 * kd_hist.epochs[0]["train_loss"]


def test_cached_teachers_give_the_live_loss_curve(tmp_path: Path, one_thread: None) -> None:
    """Same seed, same data: fp32-cached teacher outputs reproduce the live teachers' loss curve."""
    data = MultiDomainDataset(["mnist", "uci_digits"], "train", limit=48)
    collate = ImageCollator(size=28)
    teachers = digit_teachers()
    maps = [LabelMap.identity(DIGITS, teacher=t.name) for t in teachers]
    cfg = EngineConfig(
        epochs=2, batch_size=16, lr=5e-3, temperature=3.0, seed=3, show_progress=False
    )

    def curve(ts: list[Any]) -> list[float]:
        """Loss curve of KD + CE + feature alignment (trained projectors) from teachers ``ts``."""
        loss = build_loss(
            "weighted_sum",
            losses={"kd": "combined", "feat": {"name": "feature", "pairs": ["pooled"]}},
            weights={"feat": 0.5},
        )
        engine = DistillationEngine(small_student(), ts, loss, UniformWeighting(2), cfg, maps)
        return engine.fit(data, collate_fn=collate).losses()

    live = curve(teachers)
    caches = [
        TeacherCache.build(t, data, collate, path=tmp_path / f"{t.name}.safetensors", features=["pooled"],
                           dtype="fp32", show_progress=False)
        for t in teachers
    ]  # fmt: skip
    cached = curve([CachedTeacher(c) for c in caches])
    assert len(live) == len(cached) == 12
    assert live[-1] < live[0]
    np.testing.assert_allclose(cached, live, rtol=1e-4, atol=1e-5)
    # fp16 caches (the default, half the size) stay close too
    half = [TeacherCache.build(t, data, collate, path=tmp_path / f"h_{t.name}.safetensors", features=["pooled"],
                               show_progress=False) for t in teachers]  # fmt: skip
    np.testing.assert_allclose(curve([CachedTeacher(c) for c in half]), live, rtol=2e-2)
