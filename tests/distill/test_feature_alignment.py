"""KG-weighted feature alignment: fitted signals → engine's alignment weights and feature loss.

A unit test trains FiLM projectors on small real tensors with the real fitted signals of
the shipped digits graph; a smoke-scale recipe run checks the feature term reaches the
run's history and decreases.
"""

from __future__ import annotations

import pytest
import torch

from kgkd.distill.context import LossContext
from kgkd.distill.losses import build_loss
from kgkd.errors import ConfigError
from kgkd.graph import KnowledgeGraph
from kgkd.models.base import ModelOutput
from kgkd.paths import graphs_dir
from kgkd.recipes import digits_transfer, load_config
from kgkd.signals import fit_signals
from kgkd.signals.alignment import FiLMFeatureLoss, with_feature_alignment

TEACHERS = ["teacher_mnist", "teacher_usps", "teacher_svhn"]
DOMAINS = ["mnist", "uci_digits"]


@pytest.fixture(scope="module")
def fitted():
    g = torch.Generator().manual_seed(0)
    labels = {d: torch.randint(0, 10, (40,), generator=g) for d in DOMAINS}
    probs = {
        d: {t: torch.softmax(torch.randn(40, 10, generator=g) * 2, -1) for t in TEACHERS}
        for d in DOMAINS
    }
    return fit_signals(
        KnowledgeGraph.from_file(graphs_dir() / "digits.ttl"),
        probs,
        labels,
        DOMAINS,
        epochs=5,
        seed=0,
        use_text=False,
        shrinkage=0.25,
    )


def test_film_alignment_trains_and_uses_the_fitted_alignment_weights(fitted) -> None:
    loss, weighting = with_feature_alignment(
        build_loss("ce"),
        fitted,
        DOMAINS,
        weight=0.5,
        loss="mse",
        projector="film",
        pairs=["pooled:hidden"],
    )
    assert isinstance(loss.feature, FiLMFeatureLoss)
    domain = torch.tensor([0, 1, 1, 0, 1, 0])
    assert torch.allclose(weighting(domain), fitted.alignment(DOMAINS)[domain])
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 8, generator=g)
    student = torch.nn.Linear(8, 10)
    teachers = [
        ModelOutput(torch.randn(6, 10, generator=g), {"hidden": torch.randn(6, 5, generator=g)})
        for _ in TEACHERS
    ]

    def ctx() -> LossContext:
        logits = student(x)
        return LossContext(
            student=ModelOutput(logits, {"pooled": logits}),
            teachers=teachers,
            labels=torch.randint(0, 10, (6,), generator=g),
            domain=domain,
            teacher_weights=torch.full((6, 3), 1 / 3),
            alignment_weights=weighting(domain),
            label_maps=[],
            temperature=1.0,
            alpha=0.5,
        )

    loss.setup(ctx())
    assert len(loss.feature.projectors) == len(TEACHERS)
    opt = torch.optim.Adam([*student.parameters(), *loss.parameters()], lr=0.05)
    first = None
    for _ in range(60):
        value = loss(ctx())
        first = loss.last_terms["feature"] if first is None else first
        opt.zero_grad()
        value.backward()
        opt.step()
    assert set(loss.last_terms) >= {"distill", "feature", "total"}
    assert loss.last_terms["feature"] < 0.5 * first
    # the KG condition reaches the projection: FiLM parameters moved from their zero start
    assert any(p.film.weight.abs().sum() > 0 for p in loss.feature.projectors.values())


def test_feature_alignment_config_errors() -> None:
    with pytest.raises(
        ConfigError,
        match=r"distill.feature_alignment.projector' must be one of .*Did you mean 'film'",
    ):
        load_config("digits_transfer_quick", ["distill.feature_alignment.projector=flim"])
    with pytest.raises(
        ConfigError, match=r"unknown config key 'distill.feature_alignment.wieght'.*Did you mean"
    ):
        load_config("digits_transfer_quick", ["distill.feature_alignment.wieght=1"])


def test_recipe_with_feature_alignment_smoke(shared_cache, tmp_path) -> None:
    result = digits_transfer.run(
        "digits_transfer_quick",
        [
            "output.show_progress=false",
            "signals.baselines=[uniform]",
            f"output.dir={tmp_path}/run",
            "distill.feature_alignment.weight=1.0",
            "distill.feature_alignment.loss=cosine",
            "data.train_limit=96",
            "data.test_limit=32",
            "data.val_limit=48",
            "signals.epochs=10",
            "distill.engine.epochs=2",
        ],
        smoke=True,
    )
    terms = result.metrics["distill_history"]["terms_by_epoch"]
    assert len(terms["feature"]) == 2 and terms["feature"][-1] < terms["feature"][0], terms
    assert "pooled" in result.config.teachers.features  # the teacher side was cached
    assert 0.0 <= result.student_accuracy("uci_digits") <= 1.0
