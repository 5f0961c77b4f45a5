"""Recipes end to end at smoke scale: every output file, honest numbers, clear errors.

The text teachers are trained once per session into a shared ``KGKD_CACHE_DIR``
(also used by test_cli.py and test_notebooks.py); the digit teachers are the
pretrained ccexam nets.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rdflib import Graph

from kgkd.errors import CheckpointError, ConfigError, MissingDataError
from kgkd.recipes import (
    digits_fashion_amalgamation,
    digits_transfer,
    load_config,
    sentiment_transfer,
)
from kgkd.recipes.report import OUTPUT_FILES, TEACHER_WEIGHT

FAST = ["output.show_progress=false", "signals.baselines=[uniform,confidence,best_single]"]




def _check_outputs(result, n_teachers: int) -> dict:
    out = result.output_dir
    for name in OUTPUT_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for name in ("model.safetensors", "config.json", "kgkd_recipe.json", "graph.ttl"):
        assert (result.student_dir / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["timings"]["total"] > 0
    # fitted weights: one row per domain, summing to 1, also written into the graph
    for domain, row in metrics["weights"].items():
        assert len(row) == n_teachers and sum(row.values()) == pytest.approx(1.0, abs=1e-4), domain
    g = Graph().parse(out / "graph_with_weights.ttl", format="turtle")
    assert len(list(g.triples((None, TEACHER_WEIGHT, None)))) == len(metrics["weights"]) * n_teachers
    # distillation made real optimisation steps that lowered the loss
    hist = metrics["distill_history"]
    assert hist["steps"] > 0 and hist["last_loss"] < hist["first_loss"]
    for entry in metrics["domains"].values():
        assert set(entry["ensembles"]) >= {"kg", "uniform", "confidence", "best_single"}
        assert 0.0 <= entry["student"]["accuracy"] <= 1.0
    return metrics


def _reload_and_rescore(result, domain: str) -> float:
    """Accuracy of the *saved* student on ``domain`` through ``kgkd eval``'s code path."""
    from kgkd.cli.eval import _collate, _label_remap
    from kgkd.cli.predict import read_meta
    from kgkd.data import MultiDomainDataset, load_domain
    from kgkd.models import load_student
    from kgkd.recipes.pipeline import StudentView, student_predictions

    cfg = result.config
    student = load_student(result.student_dir)
    meta = read_meta(result.student_dir)
    ds = MultiDomainDataset([load_domain(domain, "test", limit=cfg.data.test_limit, seed=cfg.seed)], split="test")
    view = StudentView(ds, [_label_remap(result.student_dir, meta, domain, len(ds.datasets[0].label_names))])
    preds = student_predictions(student, view, _collate(student, meta))
    return float((preds.numpy() == view.labels).mean())


def test_digits_transfer_smoke(tmp_path: Path, shared_cache: Path) -> None:
    result = digits_transfer.run("digits_transfer_quick", [f"output.dir={tmp_path / 'run'}", *FAST], smoke=True)
    metrics = _check_outputs(result, n_teachers=3)
    assert metrics["domains"]["uci_digits"]["role"] == "target"
    # the saved student reproduces the reported held-out accuracy exactly
    assert _reload_and_rescore(result, "uci_digits") == pytest.approx(result.student_accuracy("uci_digits"))
    # the pretrained MNIST teacher is far above chance on MNIST: the cached outputs are real
    assert metrics["domains"]["mnist"]["teachers"]["teacher_mnist"]["accuracy"] > 0.8


def test_sentiment_transfer_smoke(tmp_path: Path, shared_cache: Path) -> None:
    result = sentiment_transfer.run("sentiment_transfer_quick", [f"output.dir={tmp_path / 'run'}", *FAST], smoke=True)
    metrics = _check_outputs(result, n_teachers=4)
    assert {d for d, e in metrics["domains"].items() if e["role"] == "target"} == {"yelp", "movie_reviews", "product_reviews"}
    # trained teachers beat chance on their own domain by a clear margin
    assert metrics["domains"]["amazon"]["teachers"]["teacher_amazon"]["accuracy"] >= 0.65
    assert (shared_cache / "teachers" / "teacher_nyt").is_dir()
    assert _reload_and_rescore(result, "yelp") == pytest.approx(result.student_accuracy("yelp"))


def test_amalgamation_maps_clothing_into_the_20_class_student(tmp_path: Path, shared_cache: Path) -> None:
    """With Fashion-MNIST built: full smoke run; without it: the error names the build command."""
    from kgkd.data import data_file
    from kgkd.recipes.pipeline import domain_label_remap, load_graph

    cfg = load_config("digits_fashion_amalgamation_quick", smoke=True)
    kg = load_graph(cfg)
    assert domain_label_remap(kg, "fashion_mnist", "digits_clothing20").tolist() == list(range(10, 20))
    assert domain_label_remap(kg, "mnist", "digits_clothing20").tolist() == list(range(10))
    overrides = [f"output.dir={tmp_path / 'run'}", *FAST, "teachers.train={epochs: 1, limit: 256}"]
    if not data_file("fashion_mnist").is_file():
        with pytest.raises(MissingDataError, match=r"fashion_mnist.*kgkd data build --fashion"):
            digits_fashion_amalgamation.run("digits_fashion_amalgamation_quick", overrides, smoke=True)
        return
    result = digits_fashion_amalgamation.run("digits_fashion_amalgamation_quick", overrides, smoke=True)
    metrics = _check_outputs(result, n_teachers=2)
    assert metrics["label_set"] == "digits_clothing20"
    # the graph routes clothing images to the clothing teacher
    assert metrics["weights"]["fashion_mnist"]["teacher_fashion"] > metrics["weights"]["fashion_mnist"]["teacher_mnist"]


def test_missing_teacher_without_training_names_path_and_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGKD_CACHE_DIR", str(tmp_path / "empty_cache"))
    with pytest.raises(CheckpointError, match=r"teacher 'teacher_nyt' at .*teacher_nyt.*kgkd teachers train --domain nyt_editorials"):
        sentiment_transfer.run(
            "sentiment_transfer_quick",
            [f"output.dir={tmp_path / 'run'}", "teachers.train_if_missing=false", "teachers.names=[teacher_nyt]"],
            smoke=True,
        )


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("signals.encoder=sgae", r"signals\.encoder: unknown signal encoder 'sgae'.*Did you mean 'sage'"),
        ("signals.baselines=[unifrom]", r"signals\.baselines: unknown teacher weighting 'unifrom'.*'uniform'"),
        ("signals.weighting=oracle", r"'oracle' reads the held-out labels"),
        ("data.target_domains=[yelpp]", r"domain 'yelpp' is not in the graph.*Did you mean 'yelp'"),
        ("teachers.names=[teacher_amzon]", r"'teacher_amzon' is not a teacher of the graph.*'teacher_amazon'"),
        ("data.target_domains=[amazon]", r"\['amazon'\] are both source and target"),
    ],
)
def test_bad_names_fail_before_any_training(tmp_path: Path, override: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        sentiment_transfer.run("sentiment_transfer_quick", [f"output.dir={tmp_path}", override], smoke=True)


def test_student_kind_must_match_recipe(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"student\.kind='text', but recipe 'digits_transfer' distils image "
                       r"teachers; set student\.kind to one of \['digit', 'digit-fast'\]"):
        digits_transfer.run("digits_transfer_quick", ["student.kind=text", f"output.dir={tmp_path}"], smoke=True)


def test_student_view_hides_held_out_labels_and_remaps() -> None:
    from kgkd.data import MultiDomainDataset, load_domain
    from kgkd.recipes.pipeline import StudentView

    ds = MultiDomainDataset([load_domain("amazon", "test", limit=10), load_domain("yelp", "test", limit=10)], split="test")
    view = StudentView(ds, [np.array([1, 0]), np.array([0, 1])], hidden=[1])
    items = [view[i] for i in range(len(view))]
    assert [it["label"] for it in items[10:]] == [-1] * 10
    assert [it["label"] for it in items[:10]] == [1 - int(y) for y in ds.datasets[0].labels]
    assert view.labels.tolist() == [it["label"] for it in items]
    assert view.fingerprint() == ds.fingerprint()
    assert torch.equal(torch.as_tensor(view.domains), torch.as_tensor(ds.domains))
