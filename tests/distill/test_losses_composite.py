"""Composite losses: weighted_sum, uncertainty (Kendall) weighting, per_task routing."""

from __future__ import annotations

import math

import pytest
import torch

from kgkd.distill.context import LossContext
from kgkd.distill.losses import build_loss
from kgkd.errors import ConfigError, DistillError
from kgkd.models.base import ModelOutput

pytestmark = pytest.mark.usefixtures("one_thread")


def make_ctx() -> LossContext:
    torch.manual_seed(0)
    return LossContext(
        student=ModelOutput(torch.randn(4, 3), {"h": torch.randn(4, 5)}),
        teachers=[ModelOutput(torch.randn(4, 3), {"h": torch.randn(4, 5)})],
        labels=torch.tensor([0, 2, -1, 1]),
        task=torch.tensor([0, 1, 1, 0]),
        temperature=2.0,
    )


def test_weighted_sum_total_and_last_terms() -> None:
    ctx = make_ctx()
    kd, ce = build_loss("kd")(ctx).item(), build_loss("ce")(ctx).item()
    loss = build_loss(
        "weighted_sum", losses={"kd": "kd", "ce": {"name": "ce"}}, weights={"kd": 0.25}
    )
    assert loss(ctx).item() == pytest.approx(0.25 * kd + 1.0 * ce, rel=1e-6)
    assert loss.last_terms == pytest.approx({"kd": kd, "ce": ce, "total": 0.25 * kd + ce})
    with pytest.raises(
        ConfigError, match=r"weights given for unknown term\(s\) \['feat'\]; the terms are \['kd'\]"
    ):
        build_loss("weighted_sum", losses={"kd": "kd"}, weights={"feat": 1.0})
    with pytest.raises(ConfigError, match="weighted_sum: 'losses' is empty"):
        build_loss("weighted_sum", losses={})
    with pytest.raises(ConfigError, match="unknown loss 'kdd'. Did you mean 'kd'"):
        build_loss("weighted_sum", losses={"x": "kdd"})


def test_uncertainty_hand_computed_and_learns_log_variances() -> None:
    ctx = make_ctx()
    kd, ce = build_loss("kd")(ctx).item(), build_loss("ce")(ctx).item()
    loss = build_loss("uncertainty", losses={"kd": "kd", "ce": "ce"}, init_log_var=0.5)
    assert loss(ctx).item() == pytest.approx(math.exp(-0.5) * (kd + ce) + 1.0, rel=1e-5)
    assert loss.last_terms["kd.weight"] == pytest.approx(math.exp(-0.5))
    # the student is fixed: the optimum of exp(-s)·L + s is s = log L per task
    opt = torch.optim.SGD(loss.parameters(), lr=0.2)
    for _ in range(150):
        opt.zero_grad()
        loss(ctx).backward()
        opt.step()
    assert loss.log_vars.detach().tolist() == pytest.approx([math.log(kd), math.log(ce)], abs=0.05)
    weights = loss.weights()
    assert (weights["kd"] > weights["ce"]) == (kd < ce)  # the larger loss is down-weighted
    with pytest.raises(ConfigError, match="uncertainty: 'losses' is empty"):
        build_loss("uncertainty", losses={})


def test_per_task_routes_rows_and_weights() -> None:
    ctx = make_ctx()
    loss = build_loss("per_task", losses={"0": "ce", 1: "kd"}, weights={0: 2.0, "1": 0.5})
    rows0, rows1 = (
        torch.tensor([True, False, False, True]),
        torch.tensor([False, True, True, False]),
    )
    ce0 = build_loss("ce")(ctx.select(rows0)).item()
    kd1 = build_loss("kd")(ctx.select(rows1)).item()
    assert loss(ctx).item() == pytest.approx(2.0 * ce0 + 0.5 * kd1, rel=1e-6)
    assert loss.last_terms["task0"] == pytest.approx(ce0) and loss.last_terms[
        "task1"
    ] == pytest.approx(kd1)
    # the CE of task 0 really only sees rows 0 and 3
    s = ctx.student.logits
    manual = torch.nn.functional.cross_entropy(s[[0, 3]], torch.tensor([0, 1])).item()
    assert ce0 == pytest.approx(manual, rel=1e-6)


def test_per_task_errors_and_default() -> None:
    ctx = make_ctx()
    with pytest.raises(
        DistillError,
        match=r"samples of task id 1 but losses are configured only for task ids \[0\]",
    ):
        build_loss("per_task", losses={0: "ce"})(ctx)
    assert build_loss("per_task", losses={0: "ce"}, default="kd")(ctx).item() > 0
    ctx.task = None
    with pytest.raises(DistillError, match="per_task loss needs LossContext.task"):
        build_loss("per_task", losses={0: "ce"})(ctx)
    with pytest.raises(ConfigError, match="task key 'sentiment' is not an integer task id"):
        build_loss("per_task", losses={"sentiment": "ce"})
    with pytest.raises(ConfigError, match=r"weights for task ids \[3\] that have no loss"):
        build_loss("per_task", losses={0: "ce"}, weights={3: 1.0})


def test_setup_reaches_nested_feature_loss() -> None:
    ctx = make_ctx()
    loss = build_loss(
        "weighted_sum", losses={"kd": "kd", "feat": {"name": "feature", "pairs": ["h"]}}
    )
    loss.setup(ctx)
    assert (
        len(list(loss.parameters())) == 2
    )  # the projector's weight and bias exist before the optimizer


def test_relational_loss_cannot_be_mixed_per_sample() -> None:
    with pytest.raises(ConfigError, match="combined.kd: loss RKDLoss has no per-sample form"):
        build_loss("combined", kd="rkd")
    total = build_loss("weighted_sum", losses={"rkd": {"name": "rkd", "student_feature": "h"}})
    with pytest.raises(DistillError, match="loss RKDLoss is not a per-sample mean"):
        total.per_sample(make_ctx())
