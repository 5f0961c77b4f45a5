"""`train_teacher` / `kgkd teachers train` write loadable checkpoints; `load_teacher` resolves names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from kgkd.cli import main
from kgkd.data import ImageCollator, TextCollator, load_domain, load_minilm_tokenizer
from kgkd.errors import CheckpointError, ConfigError, ModelError
from kgkd.models import HFTeacher, ModuleTeacher, load_teacher, train_teacher
from kgkd.models.training import evaluate_accuracy


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A teacher folder with a tiny text teacher (API) and a tiny image teacher (CLI)."""
    root = tmp_path_factory.mktemp("teachers")
    torch.set_num_threads(2)
    train_teacher(
        "amazon",
        limit=32,
        max_length=32,
        epochs=1,
        out=root / "teacher_amazon",
        show_progress=False,
    )
    code = main(["-q", "teachers", "train", "--domain", "uci_digits", "--limit", "300", "--epochs", "3",
                 "--out", str(root / "teacher_uci_digits"), "--no-progress"])  # fmt: skip
    assert code == 0
    return root


def test_text_teacher_checkpoint_is_complete_and_consistent(root: Path) -> None:
    folder = root / "teacher_amazon"
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "kgkd_teacher.json", "tokenizer.json"} <= names
    meta = json.loads((folder / "kgkd_teacher.json").read_text())
    assert meta["domain"] == "amazon" and meta["label_names"] == ["negative", "positive"]
    assert (
        meta["kind"] == "hf"
        and meta["seed"] == 0
        and meta["train_size"] == 32
        and meta["train_time_s"] > 0
    )
    assert meta["trainable_parameters"] < meta["total_parameters"] / 4  # lower layers frozen
    teacher = load_teacher("teacher_amazon", root)
    assert isinstance(teacher, HFTeacher) and teacher.label_names == ("negative", "positive")
    val = load_domain("amazon", "val", limit=32)
    loader = DataLoader(val, batch_size=64, collate_fn=TextCollator(load_minilm_tokenizer(), 32))
    with torch.no_grad():  # the reloaded weights reproduce the accuracy measured before saving
        assert evaluate_accuracy(teacher, loader) == pytest.approx(meta["val_accuracy"])
    assert not list(root.glob(".teacher_amazon.*"))


def test_image_teacher_learns_and_reloads(root: Path) -> None:
    meta = json.loads((root / "teacher_uci_digits" / "kgkd_teacher.json").read_text())
    assert meta["kind"] == "cnn" and meta["val_accuracy"] > 0.4  # chance is 0.10
    teacher = load_teacher("teacher_uci_digits", root)
    assert isinstance(teacher, ModuleTeacher)
    val = load_domain("uci_digits", "val", limit=300)
    with torch.no_grad():
        acc = evaluate_accuracy(
            teacher, DataLoader(val, batch_size=128, collate_fn=ImageCollator(28))
        )
        out = teacher(ImageCollator(28)([val[0], val[1]]))
    assert acc == pytest.approx(meta["val_accuracy"])
    assert out.features["conv"].shape == (2, 64, 7, 7) and out.features["pooled"].shape == (2, 128)


def test_ccexam_names_resolve_without_checkpoint(tmp_path: Path) -> None:
    teacher = load_teacher("teacher_usps", tmp_path)
    assert teacher.name == "teacher_usps" and teacher.num_labels == 10


def test_missing_checkpoint_names_path_and_command(tmp_path: Path) -> None:
    with pytest.raises(
        CheckpointError,
        match=r"teacher_yelp.*at .*teacher_yelp; create it with `kgkd teachers train --domain yelp`",
    ):
        load_teacher("teacher_yelp", tmp_path)
    with pytest.raises(
        ModelError, match=r"teacher name 'amazon' must look like 'teacher_<domain>'"
    ):
        load_teacher("amazon", tmp_path)


@pytest.mark.parametrize("name", ["teacher_amazon", "teacher_uci_digits"])
def test_truncated_weights_name_the_file(name: str, root: Path, tmp_path: Path) -> None:
    broken = tmp_path / name
    broken.mkdir()
    for f in (root / name).iterdir():
        if f.name != "model.safetensors":
            shutil.copy(f, broken / f.name)
    (broken / "model.safetensors").write_bytes(
        (root / name / "model.safetensors").read_bytes()[:4096]
    )
    with pytest.raises(
        CheckpointError, match=rf"{name}/model\.safetensors is corrupt or truncated"
    ):
        load_teacher(name, tmp_path)


def test_missing_metadata_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "teacher_imdb").mkdir()
    with pytest.raises(CheckpointError, match=r"teacher_imdb/kgkd_teacher\.json does not exist"):
        load_teacher("teacher_imdb", tmp_path)


def test_bad_training_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"trainable_layers=9 must be between 0 and 6"):
        train_teacher(
            "amazon", limit=8, trainable_layers=9, out=tmp_path / "t", show_progress=False
        )
    assert not (tmp_path / "t").exists()


def test_cli_eval_of_missing_teacher_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["teachers", "eval", "--teacher", "teacher_tweets", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "kgkd teachers train --domain tweets" in err
