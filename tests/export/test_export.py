"""``kgkd export``: ONNX and Hugging Face round trips on real inputs, and refused outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kgkd.cli import main
from kgkd.data import load_domain, load_minilm_tokenizer
from kgkd.errors import ConfigError, ModelError, OutputExistsError
from kgkd.export import export_student
from kgkd.export.inputs import text_batch
from kgkd.models import DigitStudent, TextStudent
from kgkd.models.students.bert import BertStudent

TOL = 1e-4  # stated tolerance of both checks (logits)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return load_domain("amazon", "train").texts[:120]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, texts: list[str]) -> dict[str, Path]:
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("students")
    tok = load_minilm_tokenizer()
    out = {"digit": root / "digit", "text": root / "text", "bert": root / "bert"}
    DigitStudent().save_pretrained(out["digit"])
    TextStudent.from_texts(texts, tok, max_length=64).save_pretrained(out["text"])
    BertStudent.from_teacher(texts, tok, num_layers=1, max_length=64).save_pretrained(out["bert"])
    return out


@pytest.mark.parametrize("kind", ["digit", "text", "bert"])
def test_onnx_round_trip(saved: dict[str, Path], tmp_path: Path, kind: str) -> None:
    import onnxruntime as ort

    out = tmp_path / "onnx"
    report = export_student(saved[kind], "onnx", out, samples=16)
    assert report["check"]["max_abs_diff"] <= TOL
    assert report["check"]["checked_on"] == 17
    assert json.loads((out / "export.json").read_text())["check"] == report["check"]
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    from kgkd.models import load_student

    student = load_student(saved[kind])
    if kind == "digit":
        pixels = torch.from_numpy(load_domain("mnist", "test").images[:5].astype(np.float32) / 255.0)[:, None]
        feed = {"pixels": pixels}
    else:
        tok = load_minilm_tokenizer()
        assert (out / "tokenizer" / "tokenizer.json").is_file()
        batch = text_batch(load_domain("yelp", "test").texts[:7], tok, 64)
        feed = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        expected = student(feed).logits.numpy()
    got = session.run(["logits"], {k: v.numpy() for k, v in feed.items()})[0]
    assert np.abs(got - expected).max() <= TOL


def test_hf_folder_loads_with_plain_transformers(saved: dict[str, Path], tmp_path: Path, texts: list[str]) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    out = tmp_path / "hf"
    report = export_student(saved["bert"], "hf", out, samples=16)
    assert {"config.json", "model.safetensors", "tokenizer.json", "export.json"} <= {p.name for p in out.iterdir()}
    assert report["check"]["in_vocabulary"] >= 1
    assert report["check"]["max_abs_diff_in_vocabulary"] <= TOL
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    from kgkd.models import load_student

    student = load_student(saved["bert"])
    sample = texts[:6]  # the student's vocabulary came from these: every piece is kept
    full = text_batch(sample, load_minilm_tokenizer(), 64)
    mine = tokenizer(sample, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        diff = (model(**mine).logits - student(full).logits).abs().max().item()
    assert diff <= TOL
    classify = pipeline("text-classification", model=str(out))
    result = classify(["great product, works perfectly", "broke after a day"])
    assert [r["label"] in ("negative", "positive") for r in result] == [True, True]


def test_refuses_non_empty_out_and_keeps_files(saved: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="already holds notes.txt"):
        export_student(saved["digit"], "onnx", out)
    assert main(["export", str(saved["digit"]), "--format", "onnx", "--out", str(out)]) == 2
    assert "already holds notes.txt" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no staged leftovers


def test_hf_refused_for_non_bert_students(saved: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="export it with --format onnx"):
        export_student(saved["text"], "hf", tmp_path / "a")
    with pytest.raises(ConfigError, match="--format hf is for text students"):
        export_student(saved["digit"], "hf", tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_export_prints_the_check(saved: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(saved["digit"]), "--format", "onnx", "--out", str(tmp_path / "o"), "--samples", "8"]) == 0
    out = capsys.readouterr().out
    assert "max |logit difference|" in out and "tolerance 0.0001" in out
    assert main(["export", str(tmp_path / "nope"), "--format", "onnx", "--out", str(tmp_path / "p")]) == 2
    assert "does not exist" in capsys.readouterr().err
