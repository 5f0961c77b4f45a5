"""Feature (hint) and relational (RKD) losses, and the projectors they use."""

from __future__ import annotations

import math

import pytest
import torch

from kgkd.distill.context import LossContext
from kgkd.distill.losses import build_loss
from kgkd.distill.losses.rkd import normalised_distances
from kgkd.distill.projectors import PROJECTORS, build_projector, build_projectors
from kgkd.errors import ConfigError, DistillError
from kgkd.models.base import ModelOutput

pytestmark = pytest.mark.usefixtures("one_thread")


def ctx_with(student_feat: torch.Tensor, teacher_feats: list[torch.Tensor], **kw) -> LossContext:
    b = student_feat.shape[0]
    return LossContext(
        student=ModelOutput(torch.zeros(b, 2), {"h": student_feat}),
        teachers=[ModelOutput(torch.zeros(b, 2), {"h": f}) for f in teacher_feats],
        **kw,
    )


def test_feature_mse_identity_projector_hand_computed_with_alignment_weights() -> None:
    s = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    t1 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    t2 = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    ctx = ctx_with(s, [t1, t2], alignment_weights=torch.tensor([[0.25, 0.75], [1.0, 0.0]]))
    loss = build_loss("feature", pairs=["h:h"], projector="identity")
    # per-sample MSE: t1 → [2.5, 1.0], t2 → [2.0, 4.5]
    expected = ((0.25 * 2.5 + 0.75 * 2.0) + (1.0 * 1.0 + 0.0 * 4.5)) / 2
    assert loss(ctx).item() == pytest.approx(expected)
    ctx.alignment_weights = torch.tensor([0.5, 2.0])  # [T] form broadcasts over samples
    assert loss(ctx).item() == pytest.approx(((0.5 * 2.5 + 2 * 2.0) + (0.5 * 1.0 + 2 * 4.5)) / 2)


def test_feature_cosine_hand_computed_and_layer_weights() -> None:
    s = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[1.0, 1.0]])
    ctx = ctx_with(s, [t])
    loss = build_loss(
        "feature", pairs=[["h", "h"]], kind="cosine", projector="identity", layer_weights=[3.0]
    )
    assert loss(ctx).item() == pytest.approx(3.0 * (1 - 1 / math.sqrt(2)), rel=1e-5)


@pytest.mark.parametrize(
    ("s_shape", "t_shapes", "projector"),
    [
        ((16,), [(8,), (12,)], "linear"),
        ((4, 6, 6), [(8, 3, 3), (2, 6, 6)], "auto"),
        ((5, 6), [(5, 3)], "mlp"),
    ],
)
def test_feature_loss_trains_projectors_on_any_shape(s_shape, t_shapes, projector) -> None:
    torch.manual_seed(0)
    s = torch.randn(16, *s_shape)
    # teachers' features are fixed linear functions of the student's → learnable
    maps = [
        build_projector("linear" if len(s_shape) < 3 else "conv", s_shape, ts) for ts in t_shapes
    ]
    with torch.no_grad():
        targets = [m(s) for m in maps]
    ctx = ctx_with(s, targets)
    loss = build_loss("feature", pairs="h", projector=projector)
    loss.setup(ctx)
    assert sorted(loss.projectors) == [f"t{t}_p0" for t in range(len(t_shapes))]
    opt = torch.optim.Adam(loss.parameters(), lr=0.02)
    first = loss(ctx).item()
    for _ in range(80):
        opt.zero_grad()
        value = loss(ctx)
        value.backward()
        opt.step()
    assert value.item() < 0.3 * first


def test_feature_loss_errors() -> None:
    ctx = ctx_with(torch.zeros(2, 3), [torch.zeros(2, 3)])
    with pytest.raises(DistillError, match="teacher 0 has no feature 'pooled' \\(it has: h\\)"):
        build_loss("feature", pairs=["h:pooled"])(ctx)
    with pytest.raises(DistillError, match="the student has no feature 'x'"):
        build_loss("feature", pairs=["x:h"])(ctx)
    with pytest.raises(ConfigError, match="2 layer_weights for 1 feature pairs"):
        build_loss("feature", pairs=["h"], layer_weights=[1, 2])
    with pytest.raises(ConfigError, match="kind must be one of \\('mse', 'cosine'\\), got 'l1'"):
        build_loss("feature", kind="l1")
    with pytest.raises(ConfigError, match="pairs\\[0\\] = 3"):
        build_loss("feature", pairs=[3])
    with pytest.raises(DistillError, match="teacher index 4 is out of range"):
        build_loss("feature", pairs=["h"], teachers=[4])(ctx)
    ctx.alignment_weights = torch.ones(3)
    with pytest.raises(
        DistillError, match=r"alignment_weights has shape \(3,\); expected \[2, 1\]"
    ):
        build_loss("feature", pairs=["h"])(ctx)


def test_projector_shapes_and_errors() -> None:
    x = torch.randn(3, 7, 5)
    per_pos = build_projector("linear", (7, 5), (7, 9))
    assert per_pos.per_position and per_pos(x).shape == (3, 7, 9)
    flat = build_projector("linear", (7, 5), (4,))
    assert not flat.per_position and flat(x).shape == (3, 4)
    mods = build_projectors((4, 8, 8), [(16, 4, 4), (2, 8, 8)], kind="auto")
    assert [type(m).__name__ for m in mods] == ["ConvProjector", "ConvProjector"]
    assert mods[0](torch.randn(2, 4, 8, 8)).shape == (2, 16, 4, 4)
    assert set(PROJECTORS.names()) == {"conv", "identity", "linear", "mlp"}
    with pytest.raises(ConfigError, match="conv projector needs feature maps \\[C, H, W\\]"):
        build_projector("conv", (8,), (4,))
    with pytest.raises(ConfigError, match="identity projector needs equal shapes"):
        build_projector("identity", (8,), (4,))
    with pytest.raises(ConfigError, match="unknown projector 'liner'. Did you mean 'linear'"):
        build_projector("liner", (8,), (4,))
    with pytest.raises(
        ConfigError, match="projector 'mlp' has no option 'hiden'. Did you mean 'hidden'"
    ):
        build_projector("mlp", (8,), (4,), hiden=3)
    with pytest.raises(
        DistillError,
        match="built for student features of shape \\[7, 5\\] \\(per sample\\) but got \\[7, 6\\]",
    ):
        per_pos(torch.randn(3, 7, 6))


# -- rkd ---------------------------------------------------------------------
def test_rkd_invariant_to_rotation_translation_and_scale() -> None:
    torch.manual_seed(0)
    s, t = torch.randn(6, 4), torch.randn(6, 5)
    q, _ = torch.linalg.qr(torch.randn(5, 5))
    loss = build_loss("rkd", student_feature="h")
    base = loss(ctx_with(s, [t])).item()
    moved = loss(ctx_with(s, [3.0 * t @ q + 1.5])).item()
    assert base > 0.05 and moved == pytest.approx(base, rel=1e-4)
    # a student that is a rotated teacher has nothing left to learn
    assert loss(ctx_with(t @ q, [t])).item() == pytest.approx(0.0, abs=1e-5)


def test_rkd_distance_term_hand_computed() -> None:
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    ds = [1.0, 1.0, math.sqrt(2)]
    dt = [2.0, 1.0, math.sqrt(5)]
    ns, nt = [d / (sum(ds) / 3) for d in ds], [d / (sum(dt) / 3) for d in dt]

    def smooth_l1(a: float, b: float) -> float:
        return 0.5 * (a - b) ** 2 if abs(a - b) < 1 else abs(a - b) - 0.5

    expected = (
        2 * sum(smooth_l1(a, b) for a, b in zip(ns, nt)) / 9
    )  # 6 off-diagonal + 3 zero diagonal entries
    loss = build_loss("rkd", student_feature="h", angle_weight=0.0)
    assert loss(ctx_with(s, [t])).item() == pytest.approx(expected, rel=1e-5)
    assert normalised_distances(s)[0, 1].item() == pytest.approx(ns[0], rel=1e-5)


def test_rkd_weights_teachers_and_errors() -> None:
    torch.manual_seed(1)
    s, t1, t2 = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 3)
    loss = build_loss("rkd", student_feature="h")
    only1 = loss(ctx_with(s, [t1])).item()
    weighted = loss(ctx_with(s, [t1, t2], teacher_weights=torch.tensor([[1.0, 0.0]] * 5))).item()
    assert weighted == pytest.approx(only1, rel=1e-5)
    with pytest.raises(
        ConfigError, match="distance_weight and angle_weight must be >= 0 and not both 0"
    ):
        build_loss("rkd", distance_weight=0.0, angle_weight=0.0)
    with pytest.raises(DistillError, match="teacher 0 has no feature 'emb'"):
        build_loss("rkd", student_feature="h", teacher_feature="emb")(ctx_with(s, [t1]))


def test_projectors_stay_fp32_for_low_precision_features() -> None:
    s = torch.randn(4, 6).to(torch.bfloat16)
    ctx = ctx_with(s, [torch.randn(4, 3)])
    loss = build_loss("feature", pairs=["h"])
    loss.setup(ctx)
    assert all(p.dtype == torch.float32 for p in loss.parameters())
    assert torch.isfinite(
        loss(ctx)
    )  # bf16 features are cast to the projector's dtype outside autocast
