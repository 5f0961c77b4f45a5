"""Logit losses (kd, ce, multi_teacher_kd, combined) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from kgkd.distill.context import LossContext
from kgkd.distill.losses import LOSSES, build_loss
from kgkd.errors import ConfigError, DistillError
from kgkd.labels import LabelMap
from kgkd.models.base import ModelOutput

pytestmark = pytest.mark.usefixtures("one_thread")


def out(logits: list[list[float]] | torch.Tensor, **features: torch.Tensor) -> ModelOutput:
    return ModelOutput(torch.as_tensor(logits, dtype=torch.float32), dict(features))


def softmax(xs: list[float], t: float = 1.0) -> list[float]:
    e = [math.exp(x / t) for x in xs]
    return [v / sum(e) for v in e]


def kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)


# -- kd ----------------------------------------------------------------------
def test_kd_matches_hinton_formula_at_t2() -> None:
    s, t = [1.0, 0.0], [0.0, 1.0]
    ctx = LossContext(student=out([s]), teachers=[out([t])], temperature=2.0)
    expected = kl(softmax(t, 2.0), softmax(s, 2.0)) * 4.0
    assert build_loss("kd")(ctx).item() == pytest.approx(expected, rel=1e-5)


def test_kd_reads_the_context_temperature_and_is_zero_for_equal_logits() -> None:
    ctx = LossContext(
        student=out([[2.0, -1.0, 0.5]]), teachers=[out([[2.0, -1.0, 0.5]])], temperature=7.0
    )
    assert build_loss("kd")(ctx).item() == pytest.approx(0.0, abs=1e-5)
    s, t = [0.3, 0.1, -0.2], [1.0, 0.0, 0.0]
    ctx = LossContext(student=out([s]), teachers=[out([t])], temperature=1.0)
    assert build_loss("kd")(ctx).item() == pytest.approx(kl(softmax(t), softmax(s)), rel=1e-5)


@pytest.mark.parametrize("name", ["kd", "multi_teacher_kd", "combined"])
@pytest.mark.parametrize("key", ["temperature", "alpha"])
def test_losses_take_no_temperature_or_alpha_the_engine_owns_them(name: str, key: str) -> None:
    pattern = rf"loss '{name}' takes no '{key}': the engine's schedule owns it .*distill\.engine\.{key}"
    with pytest.raises(ConfigError, match=pattern):
        build_loss(name, **{key: 2.0})
    with pytest.raises(ConfigError, match=rf"loss 'kd' takes no '{key}'"):
        build_loss("combined", kd={"name": "kd", key: 2.0})


def test_kd_errors() -> None:
    ctx = LossContext(student=out([[0.0, 1.0]]), teachers=[out([[0.0, 1.0, 2.0]])], temperature=1.0)
    with pytest.raises(
        DistillError,
        match="teacher 0 predicts 3 labels but the student predicts 2; pass one LabelMap",
    ):
        build_loss("kd")(ctx)
    with pytest.raises(
        DistillError, match="kd: teacher index 1 is out of range, the batch has 1 teacher"
    ):
        build_loss("kd", teacher=1)(ctx)
    with pytest.raises(DistillError, match="temperature must be > 0, got 0.0"):
        build_loss("kd")(
            LossContext(student=out([[0.0, 1.0]]), teachers=[out([[0.0, 1.0]])], temperature=0.0)
        )
    with pytest.raises(ConfigError, match="teacher index must be >= 0"):
        build_loss("kd", teacher=-1)


# -- ce ----------------------------------------------------------------------
def test_ce_ignores_unlabelled_and_is_zero_without_labels() -> None:
    logits = [[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]]
    ctx = LossContext(student=out(logits), labels=torch.tensor([1, -1, 0]))
    expected = (-math.log(softmax(logits[0])[1]) - math.log(softmax(logits[2])[0])) / 2
    assert build_loss("ce")(ctx).item() == pytest.approx(expected, rel=1e-5)

    student = out(logits)
    student.logits.requires_grad_(True)
    zero = build_loss("ce")(LossContext(student=student, labels=torch.tensor([-1, -1, -1])))
    zero.backward()
    assert zero.item() == 0.0 and torch.all(student.logits.grad == 0)
    assert build_loss("ce")(LossContext(student=out(logits))).item() == 0.0


def test_ce_errors() -> None:
    ctx = LossContext(student=out([[0.0, 1.0]]), labels=torch.tensor([2]))
    with pytest.raises(DistillError, match="label 2 is outside the student's 2 classes"):
        build_loss("ce")(ctx)
    with pytest.raises(ConfigError, match=r"label_smoothing must be in \[0, 1\)"):
        build_loss("ce", label_smoothing=1.0)


# -- registry ----------------------------------------------------------------
def test_registry_did_you_mean_for_names_and_options() -> None:
    assert {
        "kd",
        "ce",
        "multi_teacher_kd",
        "feature",
        "rkd",
        "combined",
        "kd_ce",
        "uncertainty",
        "weighted_sum",
        "per_task",
    } <= set(LOSSES.names())
    with pytest.raises(
        ConfigError, match="unknown loss 'multi_teacher_k'. Did you mean 'multi_teacher_kd'"
    ):
        build_loss("multi_teacher_k")
    with pytest.raises(
        ConfigError,
        match="loss 'multi_teacher_kd' has no option 'objectiv'. Did you mean 'objective'",
    ):
        build_loss("multi_teacher_kd", objectiv="sum")
    with pytest.raises(
        ConfigError, match="objective must be one of \\('mixture', 'sum'\\), got 'avg'"
    ):
        build_loss("multi_teacher_kd", objective="avg")


# -- multi_teacher_kd ----------------------------------------------------------
S, T1, T2 = [0.5, -0.5, 1.0], [2.0, 0.0, -1.0], [-1.0, 1.0, 0.5]


def test_mixture_and_sum_hand_computed_and_different() -> None:
    temp = 2.0
    w = [0.7, 0.3]
    ctx = LossContext(
        student=out([S]),
        teachers=[out([T1]), out([T2])],
        teacher_weights=torch.tensor([w]),
        temperature=temp,
    )
    p1, p2, q = softmax(T1, temp), softmax(T2, temp), softmax(S, temp)
    mixture = [w[0] * a + w[1] * b for a, b in zip(p1, p2)]
    exp_mix = kl(mixture, q) * temp**2
    exp_sum = (w[0] * kl(p1, q) + w[1] * kl(p2, q)) * temp**2
    got_mix = build_loss("multi_teacher_kd")(ctx).item()
    got_sum = build_loss("multi_teacher_kd", objective="sum")(ctx).item()
    assert got_mix == pytest.approx(exp_mix, rel=1e-5)
    assert got_sum == pytest.approx(exp_sum, rel=1e-5)
    # sum = mixture + Σ w_t KL(p_t ‖ m) (student-independent): strictly larger here
    gap = (w[0] * kl(p1, mixture) + w[1] * kl(p2, mixture)) * temp**2
    assert got_sum - got_mix == pytest.approx(gap, rel=1e-4) and gap > 0.05


def test_mixture_and_sum_coincide_for_one_teacher() -> None:
    ctx = LossContext(student=out([S, T2]), teachers=[out([T1, S])], temperature=3.0)
    mix = build_loss("multi_teacher_kd")(ctx)
    tot = build_loss("multi_teacher_kd", objective="sum")(ctx)
    assert mix.item() == pytest.approx(tot.item(), rel=1e-6)
    assert mix.item() == pytest.approx(build_loss("kd")(ctx).item(), rel=1e-6)


def test_weights_default_uniform_and_shape_checked() -> None:
    ctx = LossContext(student=out([S]), teachers=[out([T1]), out([T2])], temperature=1.0)
    uniform = build_loss("multi_teacher_kd")(ctx).item()
    ctx.teacher_weights = torch.tensor([[0.5, 0.5]])
    assert build_loss("multi_teacher_kd")(ctx).item() == pytest.approx(uniform)
    ctx.teacher_weights = torch.tensor([0.5, 0.5])
    with pytest.raises(
        DistillError,
        match=r"teacher_weights has shape \(2,\) but the batch has 1 samples and 2 teachers",
    ):
        build_loss("multi_teacher_kd")(ctx)


def amalgamation_maps() -> tuple[LabelMap, LabelMap]:
    """Two 10-label teachers into a 20-label student: digits 0..9 and clothing c0..c9."""
    student = [f"d{i}" for i in range(10)] + [f"c{i}" for i in range(10)]
    digits = LabelMap.by_name([f"d{i}" for i in range(10)], student, teacher="digits")
    clothes = LabelMap.by_name([f"c{i}" for i in range(10)], student, teacher="clothes")
    return digits, clothes


def test_label_map_amalgamation_10_into_20() -> None:
    torch.manual_seed(0)
    digits, clothes = amalgamation_maps()
    s = torch.randn(2, 20, requires_grad=True)
    t_d, t_c = torch.randn(2, 10), torch.randn(2, 10)
    weights = torch.tensor(
        [[1.0, 0.0], [0.0, 1.0]]
    )  # sample 0: digits only, sample 1: clothing only
    ctx = LossContext(
        student=ModelOutput(s),
        teachers=[ModelOutput(t_d), ModelOutput(t_c)],
        teacher_weights=weights,
        label_maps=[digits, clothes],
        temperature=2.0,
    )
    for objective in ("mixture", "sum"):
        loss = build_loss("multi_teacher_kd", objective=objective)(ctx)
        e0 = kl(softmax(t_d[0].tolist(), 2.0), softmax(s[0, :10].tolist(), 2.0))
        e1 = kl(softmax(t_c[1].tolist(), 2.0), softmax(s[1, 10:].tolist(), 2.0))
        assert loss.item() == pytest.approx((e0 + e1) / 2 * 4.0, rel=1e-5)
    # labels a sample's teachers do not cover get no gradient
    s.grad = None
    build_loss("multi_teacher_kd")(ctx).backward()
    assert torch.all(s.grad[0, 10:] == 0) and torch.all(s.grad[1, :10] == 0)
    assert s.grad[0, :10].abs().sum() > 0 and s.grad[1, 10:].abs().sum() > 0


def test_mixture_vs_sum_differ_in_gradient_with_disjoint_label_sets() -> None:
    digits, clothes = amalgamation_maps()
    torch.manual_seed(1)
    t_d, t_c = torch.randn(1, 10), torch.randn(1, 10)
    grads = []
    for objective in ("mixture", "sum"):
        s = torch.zeros(1, 20, requires_grad=True)
        ctx = LossContext(
            student=ModelOutput(s),
            teachers=[ModelOutput(t_d), ModelOutput(t_c)],
            teacher_weights=torch.tensor([[0.8, 0.2]]),
            label_maps=[digits, clothes],
        )
        build_loss("multi_teacher_kd", objective=objective)(ctx).backward()
        grads.append(s.grad.clone())
    # mixture pushes 80% of the mass onto the digit labels; sum leaves the split free
    assert grads[0][0, :10].sum() < -0.2 and grads[1][0, :10].sum().abs() < 1e-6
    assert not torch.allclose(grads[0], grads[1])


def test_many_to_one_and_uncovered_teacher_labels() -> None:
    # teacher labels: very_neg, neg, pos, neutral → student neg, pos; neutral has no counterpart
    lm = LabelMap(
        ("very_neg", "neg", "pos", "neutral"),
        ("negative", "positive"),
        (0, 0, 1, -1),
        teacher="fine",
    )
    t = [1.0, 0.5, 0.2, 2.0]
    s = [0.3, -0.3]
    ctx = LossContext(student=out([s]), teachers=[out([t])], label_maps=[lm], temperature=1.0)
    p = softmax(t)
    moved = [p[0] + p[1], p[2]]
    moved = [m / sum(moved) for m in moved]
    assert build_loss("kd")(ctx).item() == pytest.approx(kl(moved, softmax(s)), rel=1e-5)


def test_label_map_errors_name_teacher() -> None:
    digits, _ = amalgamation_maps()
    ctx = LossContext(
        student=out(torch.zeros(1, 20)), teachers=[out(torch.zeros(1, 9))], label_maps=[digits]
    )
    with pytest.raises(
        DistillError, match="teacher 0 \\('digits'\\) returned 9 logits but its label map lists 10"
    ):
        build_loss("multi_teacher_kd")(ctx)
    ctx = LossContext(
        student=out(torch.zeros(1, 12)), teachers=[out(torch.zeros(1, 10))], label_maps=[digits]
    )
    with pytest.raises(
        DistillError, match="its label map targets 20 student labels but the student predicts 12"
    ):
        build_loss("multi_teacher_kd")(ctx)
    ctx = LossContext(
        student=out(torch.zeros(1, 20)), teachers=[out(torch.zeros(1, 10))] * 2, label_maps=[digits]
    )
    with pytest.raises(DistillError, match="has 1 label maps for 2 teachers"):
        build_loss("multi_teacher_kd")(ctx)
    with pytest.raises(DistillError, match="LossContext.teachers is empty"):
        build_loss("multi_teacher_kd")(LossContext(student=out([[0.0, 1.0]])))


# -- combined ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["combined", "kd_ce"])
def test_combined_alpha_on_labelled_kd_only_on_unlabelled(name: str) -> None:
    s, t = [[1.0, 0.0], [0.2, 0.4]], [[0.0, 1.0], [1.0, -1.0]]
    ctx = LossContext(
        student=out(s), teachers=[out(t)], labels=torch.tensor([1, -1]), alpha=0.3, temperature=2.0
    )
    kd = [kl(softmax(t[i], 2.0), softmax(s[i], 2.0)) * 4.0 for i in range(2)]
    ce0 = -math.log(softmax(s[0])[1])
    expected = ((0.3 * kd[0] + 0.7 * ce0) + kd[1]) / 2
    loss = build_loss(name, kd="kd")
    assert loss(ctx).item() == pytest.approx(expected, rel=1e-5)
    assert loss.last_terms["ce"] == pytest.approx(ce0, rel=1e-5)
    ctx.alpha = 1.5
    with pytest.raises(DistillError, match=r"alpha must be in \[0, 1\], got 1.5"):
        loss(ctx)
    with pytest.raises(
        ConfigError, match="combined.kd: a loss given as a mapping needs a 'name' key"
    ):
        build_loss(name, kd={"objective": "sum"})


# -- training ------------------------------------------------------------------
def test_linear_student_learns_from_two_teachers_with_different_label_sets() -> None:
    torch.manual_seed(0)
    digits, clothes = amalgamation_maps()
    x = torch.randn(64, 8)
    domain = torch.randint(0, 2, (64,))
    w_d, w_c = torch.randn(8, 10) * 2, torch.randn(8, 10) * 2
    teachers = [ModelOutput(x @ w_d), ModelOutput(x @ w_c)]
    weights = torch.nn.functional.one_hot(domain, 2).float() * 0.8 + 0.1
    student = torch.nn.Linear(8, 20)
    opt = torch.optim.SGD(student.parameters(), lr=0.5)
    loss_fn = build_loss("multi_teacher_kd")
    losses = []
    for step in range(60):
        ctx = LossContext(
            student=ModelOutput(student(x)),
            teachers=teachers,
            teacher_weights=weights,
            label_maps=[digits, clothes],
            temperature=2.0,
            step=step,
        )
        loss = loss_fn(ctx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]
