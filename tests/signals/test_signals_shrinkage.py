"""Shrinkage of KG teacher weights toward uniform, λ chosen by inner leave-one-source-domain-out CV.

Real ccexam teachers on real digit data (mnist + uci_digits val, 160 each); the second
half of the uci probabilities is presented as the graph's ``usps`` domain so there is a
third labelled domain to hold out.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from kgkd.cli import main
from kgkd.errors import SignalError
from kgkd.graph import KnowledgeGraph
from kgkd.paths import graphs_dir
from kgkd.signals import FittedSignals, fit_signals
from kgkd.signals.baselines import stack_probs
from kgkd.signals.collect import collect_domain_probs
from kgkd.signals.fit import ensemble_nll
from kgkd.signals.shrinkage import SINGLE_SOURCE_PRIOR, check_lambda, shrink
from kgkd.signals.transfer import leave_one_domain_out

TEACHERS = ["teacher_mnist", "teacher_usps", "teacher_svhn"]
EPOCHS = 20
SOURCES = ["mnist", "uci_digits"]  # usps (second half of uci) is the held-out domain


@pytest.fixture(scope="module")
def env() -> dict:
    kg = KnowledgeGraph.from_file(graphs_dir() / "digits.ttl")
    probs, labels = collect_domain_probs(kg, TEACHERS, ["mnist", "uci_digits"], "val", limit=160)
    half = labels["uci_digits"].numel() // 2
    probs["usps"] = {t: p[half:] for t, p in probs["uci_digits"].items()}
    labels["usps"] = labels["uci_digits"][half:]
    probs["uci_digits"] = {t: p[:half] for t, p in probs["uci_digits"].items()}
    labels["uci_digits"] = labels["uci_digits"][:half]
    env = {
        "kg": kg,
        "probs": probs,
        "labels": labels,
    }
    env["cv"] = _fit(env, SOURCES)
    return env


def _fit(env: dict, sources: list[str], labels: dict | None = None, **kw) -> FittedSignals:
    return fit_signals(
        env["kg"],
        env["probs"],
        labels or env["labels"],
        sources,
        epochs=EPOCHS,
        seed=0,
        teachers=TEACHERS,
        use_text=False,  # shrinkage does not depend on node text; skips the sentence encoder
        **kw,
    )


def test_shrink_mixes_toward_uniform_and_checks_lambda() -> None:
    w = torch.tensor([[1.0, 0.0, 0.0]])
    assert torch.allclose(shrink(w, 0.5), torch.tensor([[2 / 3, 1 / 6, 1 / 6]]))
    assert torch.allclose(
        shrink(w, 1.0, torch.tensor([True, True, False])), torch.tensor([[0.5, 0.5, 0.0]])
    )
    assert shrink(w, 0.0) is w
    with pytest.raises(SignalError, match=r"shrinkage must be in \[0, 1\].*got 1.5"):
        check_lambda(1.5)
    with pytest.raises(SignalError, match="shrinkage must be 'cv' or a number"):
        fit_signals(
            KnowledgeGraph.from_file(graphs_dir() / "digits.ttl"),
            {"mnist": {"a": torch.ones(2, 10) / 10}},
            {"mnist": torch.zeros(2, dtype=torch.long)},
            ["mnist"],
            shrinkage="auto",
        )


def test_cv_lambda_matches_an_outer_lodo_of_the_unshrunk_signals(env: dict) -> None:
    """The CV score of λ is the ensemble NLL of the fold's refit, shrunk by λ, on the left-out source."""
    sources = SOURCES
    fitted = env["cv"]
    choice = fitted.history["shrinkage"]
    assert choice["rule"] == "cv" and sorted(choice["folds"]) == sorted(sources)
    assert fitted.shrinkage == min(
        choice["grid"], key=lambda lam: (choice["cv_nll"][f"{lam:g}"], -lam)
    )
    # recompute the λ=0 and λ=1 scores independently: unshrunk KG LODO and uniform LODO over the sources
    report = leave_one_domain_out(
        env["kg"],
        env["probs"],
        {d: env["labels"][d] for d in sources},
        methods=("uniform", "kg_gnn"),
        teachers=TEACHERS,
        epochs=EPOCHS,
        seed=0,
        shrinkage=0.0,
        calibrate=False,  # the shrinkage CV scores the raw teachers, with every teacher visible
        exclude_own_teacher=False,
        use_text=False,  # shrinkage does not depend on node text; skips the sentence encoder
    )
    for lam, name in ((0.0, "kg_gnn"), (1.0, "uniform")):
        expected = sum(r["nll"] for r in report.rows if r["method"] == name) / len(sources)
        assert choice["cv_nll"][f"{lam:g}"] == pytest.approx(expected, abs=1e-4)
    # the chosen λ is never worse in CV than the raw graph weights, and it is what weights() applies
    assert choice["cv_nll"][f"{fitted.shrinkage:g}"] <= choice["cv_nll"]["0"]
    assert torch.allclose(
        fitted.weights(sources), shrink(fitted.raw_weights(sources), fitted.shrinkage)
    )


def test_lambda_and_weights_never_depend_on_heldout_labels(env: dict) -> None:
    labels = dict(env["labels"])
    a = env["cv"]
    labels["usps"] = labels["usps"][
        torch.randperm(labels["usps"].numel(), generator=torch.Generator().manual_seed(1))
    ]
    b = _fit(env, SOURCES, labels)
    assert a.shrinkage == b.shrinkage and a.history["shrinkage"] == b.history["shrinkage"]
    assert torch.equal(a.weights(), b.weights())
    # ...while permuting a SOURCE domain's labels does change what is fitted
    labels["uci_digits"] = labels["uci_digits"].roll(1)
    c = _fit(env, SOURCES, labels)
    assert c.history["shrinkage"]["cv_nll"] != a.history["shrinkage"]["cv_nll"]


def test_single_source_uses_the_documented_prior_and_shrinks_lodo(env: dict) -> None:
    fitted = _fit(env, ["uci_digits"])
    assert fitted.shrinkage == SINGLE_SOURCE_PRIOR == 0.5
    assert fitted.history["shrinkage"]["rule"] == "single_source_prior"
    # the regret bound of the prior: NLL(shrunk) <= NLL(uniform) + log 2 on an unseen domain
    p, y = stack_probs(dict(env["probs"]["mnist"]), TEACHERS), env["labels"]["mnist"]
    w = fitted.sample_weights("mnist", p)
    uniform = ensemble_nll(torch.full((3,), 1 / 3), p, y)
    assert float(ensemble_nll(w, p, y)) <= float(uniform) + math.log(2) + 1e-6
    raw = fitted.raw_weights(["mnist"])
    assert float(ensemble_nll(w, p, y)) < float(
        ensemble_nll(raw[0], p, y)
    )  # measured: 0.51 vs 0.84 at 300 samples


def test_lambda_is_saved_loaded_exported_and_shown(
    env: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    fitted = _fit(env, ["mnist"], shrinkage=0.25)
    assert fitted.history["shrinkage"]["rule"] == "fixed"
    fitted.save(tmp_path / "fit")
    again = FittedSignals.load(tmp_path / "fit", env["kg"])
    assert again.shrinkage == 0.25 and torch.allclose(again.weights(), fitted.weights())
    assert fitted.to_json(["mnist"])["shrinkage"] == 0.25
    weighting = again.as_weighting(["mnist", "uci_digits"])
    assert torch.allclose(
        weighting(torch.tensor([1, 0])), again.weights(["uci_digits", "mnist"]), atol=1e-6
    )
    assert (
        main(
            [
                "signals",
                "show",
                str(graphs_dir() / "digits.ttl"),
                "--fitted",
                str(tmp_path / "fit"),
                "--out",
                str(tmp_path / "show"),
            ]
        )
        == 0
    )
    assert "shrinkage toward uniform: λ=0.25 (fixed)" in capsys.readouterr().out


def _teacher_probs(y: torch.Tensor, right: torch.Tensor, confidence: float) -> torch.Tensor:
    """Two-class probabilities: ``confidence`` on the label when ``right``, on the other label when not."""
    pred = torch.where(right, y, 1 - y)
    p = torch.full((y.numel(), 2), 1 - confidence)
    p[torch.arange(y.numel()), pred] = confidence
    return p


def _disagreeing_sources() -> tuple[dict, dict, dict]:
    """Two sources, three teachers: ``sharp`` is calibrated (0.88 confident, right on 88 %); two
    ``soft`` ones are under-confident (0.7) but right on 95 %. Log-loss prefers ``sharp`` alone,
    accuracy prefers the average (the soft pair outvotes sharp's mistakes)."""
    g = torch.Generator().manual_seed(0)
    probs, labels, masks = {}, {}, {}
    for name in ("s1", "s2"):
        y = torch.randint(0, 2, (400,), generator=g)
        teachers = [(0.88, 0.88), (0.95, 0.7), (0.95, 0.7)]  # (accuracy, confidence)
        probs[name] = torch.stack(
            [_teacher_probs(y, torch.rand(400, generator=g) < acc, conf) for acc, conf in teachers],
            dim=1,
        )
        labels[name], masks[name] = y, torch.tensor([True, True, True])
    return probs, labels, masks


def test_cv_by_accuracy_differs_from_nll_and_nll_warns_when_they_disagree(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from kgkd.signals.shrinkage import choose_shrinkage

    probs, labels, masks = _disagreeing_sources()

    def fit_fold(rest: list[str]):  # "the graph" trusts the confident teacher everywhere
        return lambda domain, p: torch.tensor([[1.0, 0.0, 0.0]]).expand(p.size(0), -1)

    with caplog.at_level("WARNING", logger="kgkd.signals.shrinkage"):
        by_nll = choose_shrinkage(fit_fold, probs, labels, masks, ["s1", "s2"])
    by_acc = choose_shrinkage(fit_fold, probs, labels, masks, ["s1", "s2"], metric="accuracy")
    nll, acc = by_nll.cv_nll, by_nll.cv_accuracy
    assert by_nll.rule == "cv" and by_acc.rule == "cv_accuracy"
    assert by_nll.lam == min(by_nll.grid, key=lambda lam: (nll[f"{lam:g}"], -lam))
    assert by_acc.lam == max(by_acc.grid, key=lambda lam: (acc[f"{lam:g}"], -nll[f"{lam:g}"]))
    assert acc[f"{by_acc.lam:g}"] >= acc[f"{by_nll.lam:g}"] + 0.1  # sharp alone is ~88 %
    assert "shrinkage_metric='accuracy'" in caplog.text and "more accurate" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="kgkd.signals.shrinkage"):
        choose_shrinkage(fit_fold, probs, labels, masks, ["s1", "s2"], metric="accuracy")
    assert "shrinkage_metric" not in caplog.text  # nothing to warn about when scoring by accuracy
    with pytest.raises(
        SignalError, match=r"shrinkage_metric must be one of \['nll', 'accuracy'\].*got 'f1'"
    ):
        choose_shrinkage(fit_fold, probs, labels, masks, ["s1", "s2"], metric="f1")
