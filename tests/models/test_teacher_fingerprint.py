"""A teacher checkpoint carries the fingerprint of what trained it and is never reused by name alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgkd.cli import main
from kgkd.errors import CheckpointError
from kgkd.graph import KnowledgeGraph
from kgkd.models.provenance import FINGERPRINT_KEY, META_NAME, TRAINING_KEY
from kgkd.paths import graphs_dir
from kgkd.recipes.config import load_config
from kgkd.recipes.teachers import obtain_teacher

# Real MiniLM teachers at tiny sizes: "quick" and "smoke" differ like the shipped recipes' do.
QUICK = {"epochs": 1, "limit": 24, "max_length": 24, "trainable_layers": 1, "lr": 0.0003}
SMOKE = {"epochs": 1, "limit": 16, "max_length": 16, "trainable_layers": 1, "lr": 0.0005}


def _cfg(train: dict, train_if_missing: bool = True):
    return load_config(
        {"name": "fp", "graph": {"path": "sentiment"},
         "data": {"source_domains": ["amazon"], "target_domains": []},
         "teachers": {"names": ["teacher_amazon"], "train_if_missing": train_if_missing, "train": dict(train)}},
        smoke=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def kg() -> KnowledgeGraph:
    return KnowledgeGraph.from_file(graphs_dir() / "sentiment.ttl")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KGKD_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_other_settings_train_their_own_teacher_side_by_side(kg, cache, one_thread, capsys) -> None:
    quick = obtain_teacher("teacher_amazon", kg, _cfg(QUICK), show_progress=False)
    plain = cache / "teachers" / "teacher_amazon"
    meta = json.loads((plain / META_NAME).read_text())
    assert meta[TRAINING_KEY]["limit"] == 24 and meta[TRAINING_KEY]["max_length"] == 24
    assert meta[TRAINING_KEY]["base_model"].startswith("sentence-transformers/all-MiniLM-L6-v2")
    assert len(meta[TRAINING_KEY]["data"]) == 16 and meta[TRAINING_KEY]["seed"] == 0
    # the smoke settings must not silently get the quick teacher
    smoke = obtain_teacher("teacher_amazon", kg, _cfg(SMOKE), show_progress=False)
    variants = sorted(p.name for p in (cache / "teachers").iterdir() if not p.name.startswith("."))
    assert len(variants) == 2 and variants[0] == "teacher_amazon" and variants[1].startswith("teacher_amazon@")
    smoke_meta = json.loads((cache / "teachers" / variants[1] / META_NAME).read_text())
    assert smoke_meta[TRAINING_KEY]["limit"] == 16 and smoke_meta[FINGERPRINT_KEY] != meta[FINGERPRINT_KEY]
    assert variants[1].endswith(smoke_meta[FINGERPRINT_KEY])
    assert quick.fingerprint() != smoke.fingerprint() and smoke.name == quick.name == "teacher_amazon"
    # asking again reuses each one (no third training), whichever order
    assert obtain_teacher("teacher_amazon", kg, _cfg(QUICK)).fingerprint() == quick.fingerprint()
    assert obtain_teacher("teacher_amazon", kg, _cfg(SMOKE)).fingerprint() == smoke.fingerprint()
    assert len([p for p in (cache / "teachers").iterdir() if not p.name.startswith(".")]) == 2
    # a third setting with training off: a clear error naming the folder, the difference and the command
    other = {**QUICK, "epochs": 2}
    with pytest.raises(CheckpointError) as err:
        obtain_teacher("teacher_amazon", kg, _cfg(other, train_if_missing=False))
    msg = str(err.value)
    assert str(plain) in msg and "epochs: 1 -> 2" in msg and "kgkd teachers train --domain amazon" in msg
    assert "--epochs 2" in msg and "train_if_missing=true" in msg
    # `kgkd teachers list` shows each checkpoint's settings
    assert main(["teachers", "list"]) == 0
    out = capsys.readouterr().out
    assert "limit=24" in out and "limit=16" in out and "max_length=24" in out and variants[1] in out


def test_checkpoint_without_fingerprint_is_never_reused(kg, cache, one_thread) -> None:
    from kgkd.models import train_teacher

    plain = cache / "teachers" / "teacher_amazon"
    train_teacher("amazon", out=plain, show_progress=False, **SMOKE)
    meta_file = plain / META_NAME
    old = json.loads(meta_file.read_text())
    old.pop(TRAINING_KEY)
    old.pop(FINGERPRINT_KEY)
    meta_file.write_text(json.dumps(old))  # what an older kgkd wrote
    with pytest.raises(CheckpointError) as err:
        obtain_teacher("teacher_amazon", kg, _cfg(SMOKE, train_if_missing=False))
    msg = str(err.value)
    assert str(plain) in msg and "records no training settings" in msg and "kgkd teachers train" in msg
    teacher = obtain_teacher("teacher_amazon", kg, _cfg(SMOKE), show_progress=False)
    assert teacher.name == "teacher_amazon"
    assert json.loads(meta_file.read_text()) == old  # the old checkpoint is left as it was
    assert len([p for p in (cache / "teachers").iterdir() if p.name.startswith("teacher_amazon@")]) == 1


def test_training_plan_fingerprint_covers_every_setting() -> None:
    from kgkd.models.training import plan_training

    base = plan_training("amazon", limit=16, epochs=1, max_length=16, trainable_layers=1)
    for change in ({"limit": 20}, {"epochs": 2}, {"max_length": 20}, {"trainable_layers": 2}, {"seed": 1},
                   {"lr": 0.01}, {"kind": "tfidf_logreg"}):  # fmt: skip
        args = {"limit": 16, "epochs": 1, "max_length": 16, "trainable_layers": 1, **change}
        assert plan_training("amazon", **args).fingerprint != base.fingerprint, change
    # settings a kind does not read do not change its fingerprint (a CNN has no max_length)
    a = plan_training("uci_digits", limit=30, max_length=16)
    assert a.fingerprint == plan_training("uci_digits", limit=30, max_length=99).fingerprint
