"""``kgkd distill`` with a damaged hand-over file names the command that recreates that file.

The teacher comes from the file's own header (never guessed from its name), and a name kgkd
would refuse (non-ASCII) is never suggested back as the fix.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kgkd.cli import main


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "a.safetensors"
    assert main(["-q", "teachers", "cache", "--teacher", "teacher_mnist", "--domain", "mnist", "--limit", "64",
                 "--dtype", "fp32", "--out", str(path)]) == 0  # fmt: skip
    return path


def distill(cache: Path, out: Path) -> list[str]:
    return ["distill", "--cache", str(cache), "--domain", "mnist", "--limit", "64", "--student", "digit",
            "--epochs", "1", "--no-progress", "--out", str(out)]  # fmt: skip


def test_truncated_file_names_the_command_from_its_header(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "teacher_usps__from_site_b.safetensors"  # the file name suggests another teacher
    data = export.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert main(distill(cut, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert f"--cache {cut} is truncated or corrupt ({len(data) * 2 // 3} of {len(data)} bytes)" in err
    assert ("recreate it at the exporting site with: kgkd teachers cache --teacher teacher_mnist --domain mnist "
            "--limit 64 --dtype fp32") in err  # fmt: skip
    assert f"--out {cut}" in err and "teacher_usps" not in err.replace(cut.name, "")
    assert not (tmp_path / "out").exists()


def test_unreadable_header_never_guesses_a_teacher(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "teacher_usps__x.safetensors"
    bad.write_bytes(b"\x00" * 64)
    assert main(distill(bad, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "(unreadable header)" in err and "--teacher TEACHER --domain mnist" in err
    assert "teacher_usps --" not in err


def test_non_ascii_teacher_in_header_is_not_suggested(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A header naming a teacher kgkd would refuse (non-ASCII) gets the TEACHER placeholder."""
    raw = export.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    meta = json.loads(header["__metadata__"]["kgkd_cache"])
    meta["teacher"] = "lehrer_café"
    header["__metadata__"]["kgkd_cache"] = json.dumps(meta)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-(len(text)) % 8)
    damaged = tmp_path / "b.safetensors"
    body = raw[8 + size :]
    damaged.write_bytes(len(text).to_bytes(8, "little") + text + body[: len(body) // 2])
    assert main(distill(damaged, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "--teacher TEACHER --domain mnist" in err and "café" not in err


def test_intact_copy_still_distils(export: Path, tmp_path: Path, one_thread: None) -> None:
    copy = tmp_path / "copy.safetensors"
    shutil.copy(export, copy)
    assert main(["-q", *distill(copy, tmp_path / "out"), "--eval-limit", "20"]) == 0
    assert (tmp_path / "out" / "student").is_dir()
