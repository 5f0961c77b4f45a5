"""``kgkd predict``: files, stdin, image folders, and the inputs that must not pass silently."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kgkd.cli import main
from kgkd.data import load_domain, load_minilm_tokenizer
from kgkd.models import DigitStudent, TextStudent


@pytest.fixture(scope="module")
def text_student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("predict") / "text"
    TextStudent.from_texts(load_domain("amazon", "train").texts[:100], load_minilm_tokenizer()).save_pretrained(folder)
    (folder / "kgkd_recipe.json").write_text(json.dumps({"max_length": 16}))
    return folder


@pytest.fixture(scope="module")
def digit_student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("predict") / "digit"
    DigitStudent().save_pretrained(folder)
    return folder


def _rows(out: str) -> list[list[str]]:
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["#", "label", "prob"]
    return [line.split(None, 3) for line in lines[1:]]


def test_text_file_csv_jsonl_and_stdin(text_student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    texts = ["great phone, love it", "battery died after two days", "works as described"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    (tmp_path / "in.csv").write_text("id,review\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(texts)))
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    results = []
    for extra in (["--input", str(tmp_path / "in.txt")], ["--input", str(tmp_path / "in.csv"), "--column", "review"],
                  ["--input", str(tmp_path / "in.jsonl")], texts):  # fmt: skip
        assert main(["predict", str(text_student), *extra]) == 0
        rows = _rows(capsys.readouterr().out)
        assert [r[3] for r in rows] == texts and all(r[1] in ("negative", "positive") for r in rows)
        results.append([(r[1], r[2]) for r in rows])
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(texts) + "\n"))
    assert main(["predict", str(text_student), "-"]) == 0
    results.append([(r[1], r[2]) for r in _rows(capsys.readouterr().out)])
    assert all(r == results[0] for r in results)  # the same texts get the same labels whatever the source


@pytest.mark.parametrize(
    ("argv", "content", "message"),
    [
        (["  "], None, "text argument 1 is empty or whitespace only"),
        (["fine", ""], None, "text argument 2 is empty"),
        (["--input", "{f}"], "good\n   \nbad\n", "in.txt line 2 is empty or whitespace only"),
        (["-"], "good\n\t\n", "stdin line 2 is empty"),
        (["-"], "", "stdin held no lines"),
        (["--input", "{f}"], "", "holds no inputs"),
        (["--input", "{d}/missing.txt"], None, "input file"),
        ([], None, "no input: pass a sentence, - for stdin, or --input FILE"),
        (["--image", "{d}/x.npy"], None, "reads text"),
    ],
)
def test_bad_text_inputs_are_errors(text_student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch, argv: list[str], content: str | None,
                                    message: str) -> None:  # fmt: skip
    file = tmp_path / "in.txt"
    if content is not None:
        file.write_text(content)
        monkeypatch.setattr("sys.stdin", io.StringIO(content))
    argv = [a.format(f=file, d=tmp_path) for a in argv]
    assert main(["predict", str(text_student), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_csv_without_the_column(text_student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in.csv").write_text("id,review\n1,nice\n")
    assert main(["predict", str(text_student), "--input", str(tmp_path / "in.csv")]) == 2
    err = capsys.readouterr().err
    assert "no column 'text'" in err and "pass --column NAME" in err


def test_long_input_gets_a_cut_notice(text_student: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long = " ".join(["good"] * 40)  # 40 word pieces + [CLS]/[SEP] = 42 tokens; the student reads 16
    assert main(["predict", str(text_student), long, "short and fine"]) == 0
    captured = capsys.readouterr()
    notes = captured.err.strip().splitlines()
    assert notes == ["kgkd: note: input 1 is 42 tokens long; the student reads 16, so the last 26 were cut"]
    assert len(_rows(captured.out)) == 2


def test_image_folder_batch(digit_student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = load_domain("mnist", "test").images[:5]
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(images):
        np.save(folder / f"digit_{i}.npy", im)
    (folder / "readme.md").write_text("not an image")
    assert main(["predict", str(digit_student), "--image", str(folder), "--batch-size", "2"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [r[3] for r in rows] == [f"digit_{i}.npy" for i in range(5)]
    single = []
    for i in range(5):
        assert main(["predict", str(digit_student), "--image", str(folder / f"digit_{i}.npy"), "--top", "1"]) == 0
        single.append(capsys.readouterr().out.split("\t")[0])
    assert [r[1] for r in rows] == single  # batched = one at a time
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", str(digit_student), "--image", str(empty)]) == 2
    assert "holds no images" in capsys.readouterr().err
