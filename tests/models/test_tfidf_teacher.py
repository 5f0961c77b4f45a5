"""The tfidf_logreg teacher family: trains in seconds, saves without pickle, reloads identically, joins recipes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kgkd.cli import main
from kgkd.data import load_domain
from kgkd.errors import CheckpointError, ConfigError, ModelError
from kgkd.models import load_teacher, train_teacher
from kgkd.models.tfidf import TfidfLogRegTeacher

TTL = """
@prefix : <https://w3id.org/kgkd/graphs/sentiment#> .
@prefix kgkd: <https://w3id.org/kgkd/vocab#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
:teacher_amazon_tfidf a kgkd:Teacher ; rdfs:label "Amazon TF-IDF teacher" ;
    kgkd:architecture "tfidf_logreg" ; kgkd:trainedOn :amazon ; kgkd:predicts :sentiment_binary .
:teacher_imdb_tfidf a kgkd:Teacher ; rdfs:label "IMDb TF-IDF teacher" ;
    kgkd:architecture "tfidf_logreg" ; kgkd:trainedOn :imdb ; kgkd:predicts :sentiment_binary .
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tfidf") / "teacher_amazon"
    result = train_teacher("amazon", kind="tfidf_logreg", limit=200, out=out, show_progress=False)
    assert result.train_time_s < 30 and 0.5 <= result.val_accuracy <= 1.0
    return out


def test_checkpoint_is_safetensors_and_json_only(folder: Path) -> None:
    assert {p.name for p in folder.iterdir()} == {"model.safetensors", "vocab.json", "config.json", "kgkd_teacher.json"}
    meta = json.loads((folder / "kgkd_teacher.json").read_text())
    assert meta["kind"] == "tfidf_logreg" and meta["training"]["kind"] == "tfidf_logreg"
    assert meta["training"]["C"] == 4.0 and meta["training_fingerprint"]


def test_reload_gives_identical_outputs_and_matches_sklearn(folder: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    a = load_teacher("teacher_amazon", folder)
    b = load_teacher("teacher_amazon", folder)
    assert isinstance(a, TfidfLogRegTeacher) and a.fingerprint() == b.fingerprint()
    val = load_domain("amazon", "val", limit=64)
    items = [val[i] for i in range(len(val))]
    with torch.no_grad():
        la = a(a.collator()(items)).logits
        lb = b(b.collator()(items)).logits
    assert la.shape == (len(items), 2)
    assert torch.allclose(la, lb, atol=1e-6, rtol=0)
    # the same model fitted directly in scikit-learn gives the same probabilities
    train = load_domain("amazon", "train", limit=200)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=20000)
    clf = LogisticRegression(C=4.0, max_iter=2000, random_state=0).fit(vec.fit_transform(train.texts), train.labels)
    x = vec.transform(val.texts)
    collated = a.collator()(items)["tfidf"].numpy()
    assert np.allclose(collated, x.toarray(), atol=1e-6)
    assert np.allclose(torch.softmax(la, -1).numpy(), clf.predict_proba(x), atol=1e-5)


def test_cli_trains_evaluates_and_caches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "teacher_imdb"
    assert main(["-q", "teachers", "train", "--domain", "imdb", "--kind", "tfidf_logreg", "--limit", "120",
                 "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    assert "teacher_imdb: val accuracy" in capsys.readouterr().out
    assert main(["teachers", "eval", "--teacher", "teacher_imdb", "--root", str(out), "--limit", "40"]) == 0
    assert "accuracy" in capsys.readouterr().out
    cache = tmp_path / "c.safetensors"
    assert main(["teachers", "cache", "--teacher", "teacher_imdb", "--root", str(out), "--domain", "yelp",
                 "--limit", "30", "--out", str(cache)]) == 0  # fmt: skip
    assert cache.stat().st_size > 0


def test_tfidf_teachers_take_part_in_a_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread) -> None:
    """The graph's architecture "tfidf_logreg" makes the recipe train (and cache) that family."""
    from kgkd.recipes import load_config, sentiment_transfer

    monkeypatch.setenv("KGKD_CACHE_DIR", str(tmp_path / "cache"))
    cfg = load_config(
        "sentiment_transfer_quick",
        [f"output.dir={tmp_path / 'run'}", "output.show_progress=false", "signals.baselines=[uniform]",
         "data.source_domains=[amazon,imdb]", "data.target_domains=[yelp]", "data.augment=false",
         "teachers.names=[teacher_amazon_tfidf,teacher_imdb_tfidf]", "data.train_limit=32", "data.val_limit=16",
         "data.test_limit=16", "teachers.train={limit: 120}"],
        smoke=True,
    )  # fmt: skip
    cfg = dataclasses.replace(cfg, graph=dataclasses.replace(cfg.graph, extra_turtle=TTL))
    result = sentiment_transfer.run(cfg)
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    assert set(metrics["weights"]["yelp"]) == {"teacher_amazon_tfidf", "teacher_imdb_tfidf"}
    for name in ("teacher_amazon_tfidf", "teacher_imdb_tfidf"):
        meta = json.loads((tmp_path / "cache" / "teachers" / name / "kgkd_teacher.json").read_text())
        assert meta["kind"] == "tfidf_logreg" and meta["training"]["limit"] == 120


def test_bad_inputs_have_clear_errors(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="teacher kind 'tfidf_logreg' trains on text but domain 'uci_digits' holds image"):
        train_teacher("uci_digits", kind="tfidf_logreg", out=tmp_path / "x", show_progress=False)
    with pytest.raises(ConfigError, match="unknown trainable teacher kind 'tfidf'. Did you mean 'tfidf_logreg'"):
        train_teacher("amazon", kind="tfidf", out=tmp_path / "x", show_progress=False)
    teacher = load_teacher("teacher_amazon", folder)
    with pytest.raises(ModelError, match=r"needs batch\['tfidf'\]"):
        teacher({"input_ids": torch.zeros(1, 3, dtype=torch.long)})
    broken = tmp_path / "teacher_amazon"
    broken.mkdir()
    for f in folder.iterdir():
        if f.name != "vocab.json":
            (broken / f.name).write_bytes(f.read_bytes())
    with pytest.raises(CheckpointError, match="vocab.json"):
        load_teacher("teacher_amazon", broken)


def test_recipe_config_can_ask_for_the_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`teachers.train.kind` overrides the graph's architecture; the kind is part of the fingerprint."""
    from kgkd.graph import KnowledgeGraph
    from kgkd.paths import graphs_dir
    from kgkd.recipes import load_config
    from kgkd.recipes.teachers import build_cache, obtain_teacher

    monkeypatch.setenv("KGKD_CACHE_DIR", str(tmp_path))
    kg = KnowledgeGraph.from_file(graphs_dir() / "sentiment.ttl")
    cfg = load_config(
        {"name": "k", "graph": {"path": "sentiment"}, "data": {"source_domains": ["amazon"], "target_domains": []},
         "teachers": {"names": ["teacher_amazon"], "train": {"kind": "tfidf_logreg", "limit": 120}}},
        smoke=False,
    )  # fmt: skip
    teacher = obtain_teacher("teacher_amazon", kg, cfg, show_progress=False)
    assert isinstance(teacher, TfidfLogRegTeacher) and teacher.name == "teacher_amazon"
    meta = json.loads((tmp_path / "teachers" / "teacher_amazon" / "kgkd_teacher.json").read_text())
    assert meta["training"]["kind"] == "tfidf_logreg"
    cache = build_cache(teacher, load_domain("yelp", "val", limit=20), None, cfg, "val", show_progress=False)
    assert cache.lookup(torch.arange(4)).logits.shape == (4, 2)
    with pytest.raises(ConfigError, match="unknown trainable teacher kind 'tfidf_lr'"):
        obtain_teacher("teacher_amazon", kg, dataclasses.replace(
            cfg, teachers=dataclasses.replace(cfg.teachers, train={"kind": "tfidf_lr"})))  # fmt: skip
