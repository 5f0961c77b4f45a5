"""Output folders: kgkd never deletes or overwrites what it did not just create.

Real files on disk: a user's file in ``--out`` survives, a non-empty folder is refused
without ``--overwrite``, ``--overwrite`` replaces only kgkd's outputs, and a run that fails
early or midway leaves no empty or half-written folder behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from kgkd.cli import main
from kgkd.errors import OutputExistsError
from kgkd.utils.io import staged_output_dir

LIMIT = "64"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """teacher_mnist's outputs on 64 MNIST training images (a site's hand-over file)."""
    path = tmp_path_factory.mktemp("export") / "a.safetensors"
    assert main(["-q", "teachers", "cache", "--teacher", "teacher_mnist", "--domain", "mnist",
                 "--limit", LIMIT, "--out", str(path)]) == 0  # fmt: skip
    return path


def distill(export: Path, out: Path, *extra: str) -> list[str]:
    return ["-q", "distill", "--cache", str(export), "--domain", "mnist", "--limit", LIMIT, "--student", "digit",
            "--epochs", "1", "--batch-size", "32", "--eval-limit", "40", "--no-progress", "--out", str(out), *extra]  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def no_partials(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if p.name.endswith(".partial")]


def test_distill_refuses_a_non_empty_out_and_touches_nothing(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], one_thread: None
) -> None:
    out = tmp_path / "earlier"
    (out / "student").mkdir(parents=True)
    (out / "student" / "model.safetensors").write_bytes(b"an earlier student")
    (out / "notes.txt").write_text("my own notes")
    before = snapshot(out)
    assert main(distill(export, out)) == 2
    err = capsys.readouterr().err
    assert f"output folder {out} already holds notes.txt, student/" in err
    assert "pass --overwrite to replace kgkd's own outputs there (other files are kept)" in err
    assert snapshot(out) == before and no_partials(tmp_path)


def test_distill_overwrite_replaces_only_kgkd_outputs(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], one_thread: None
) -> None:
    out = tmp_path / "run"
    (out / "student").mkdir(parents=True)
    (out / "student" / "model.safetensors").write_bytes(b"an earlier student")
    (out / "metrics.json").write_text('{"old": true}')
    (out / "notes.txt").write_text("my own notes")
    (out / "data").mkdir()
    (out / "data" / "mine.csv").write_text("text,label\n")
    assert main(distill(export, out, "--overwrite")) == 0
    assert (out / "notes.txt").read_text() == "my own notes"
    assert (out / "data" / "mine.csv").read_text() == "text,label\n"
    assert "student" in json.loads((out / "metrics.json").read_text())
    assert (out / "student" / "model.safetensors").read_bytes() != b"an earlier student"
    assert (out / "history.json").is_file() and (out / "logs").is_dir()
    assert no_partials(tmp_path) and no_partials(out)


def test_distill_early_error_creates_no_folder(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "deeper"
    assert main([*distill(export, out), "--weights", str(tmp_path / "missing.json")]) == 2
    assert "--weights" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA to fail inside the run")
def test_distill_failure_inside_the_run_leaves_nothing(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "run"
    assert main([*distill(export, out), "--device", "cuda"]) == 2  # fails once training starts
    assert "cuda" in capsys.readouterr().err.lower()
    assert not (tmp_path / "new").exists()


def test_staged_output_dir_publishes_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "a"
    with pytest.raises(RuntimeError), staged_output_dir(target) as stage:
        (stage / "metrics.json").write_text("{}")
        raise RuntimeError("fails halfway")
    assert not (tmp_path / "runs").exists()  # parents it created are removed too
    with staged_output_dir(target) as stage:
        (stage / "metrics.json").write_text("{}")
        assert not target.exists()  # nothing under the final name until complete
    assert (target / "metrics.json").read_text() == "{}"
    with pytest.raises(OutputExistsError, match="already holds metrics.json"), staged_output_dir(target):
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="is an existing file"), staged_output_dir(tmp_path / "file"):
        pass
    assert sorted(os.listdir(tmp_path / "runs")) == ["a"]


def test_run_refuses_existing_output_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"earlier": 1}')
    assert main(["run", "digits_transfer_quick", "--smoke", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "already holds metrics.json" in err and "--overwrite (output.overwrite=true)" in err
    assert (out / "metrics.json").read_text() == '{"earlier": 1}'


def test_run_with_a_missing_teacher_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KGKD_CACHE_DIR", str(tmp_path / "empty_cache"))
    out = tmp_path / "runs" / "r1"
    code = main(["-q", "run", "sentiment_transfer_quick", "--smoke", "--out", str(out), "--no-progress",
                 "--set", "teachers.train_if_missing=false", "--set", "teachers.names=[teacher_nyt]"])  # fmt: skip
    assert code == 2
    assert "teacher_nyt" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_run_overwrite_keeps_the_users_files(
    tmp_path: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str], one_thread: None
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("my own notes")
    (out / "metrics.json").write_text('{"earlier": 1}')
    args = ["-q", "run", "digits_transfer_quick", "--smoke", "--out", str(out), "--no-progress",
            "--set", "signals.baselines=[uniform]", "--set", "output.plots=false"]  # fmt: skip
    assert main(args) == 2  # refused without --overwrite
    assert main([*args, "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "my own notes"
    assert json.loads((out / "metrics.json").read_text())["name"] == "digits_transfer_quick"
    assert (out / "student" / "model.safetensors").is_file()
    assert no_partials(tmp_path) and no_partials(out)
