"""``kgkd distill`` end to end: two sites export ccexam teacher outputs on a shared MNIST
transfer set with ``kgkd teachers cache``; a third distils a DigitStudent from the files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from kgkd.cli import main
from kgkd.data import ImageCollator, MultiDomainDataset
from kgkd.models import load_student

LIMIT = "64"



@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Cache files of teacher_mnist and teacher_usps on MNIST train (64 items), plus one on val."""
    folder = tmp_path_factory.mktemp("exports")
    files = {}
    for name, teacher, split in (("a", "teacher_mnist", "train"), ("b", "teacher_usps", "train"),
                                 ("val", "teacher_usps", "val")):  # fmt: skip
        files[name] = folder / f"{name}.safetensors"
        args = ["teachers", "cache", "--teacher", teacher, "--domain", "mnist", "--split", split,
                "--limit", LIMIT, "--out", str(files[name])]  # fmt: skip
        assert main(args) == 0
    return files


def distill(out: Path, *extra: str) -> list[str]:
    return ["distill", "--domain", "mnist", "--limit", LIMIT, "--student", "digit", "--epochs", "2",
            "--batch-size", "16", "--no-progress", "--out", str(out), *extra]  # fmt: skip


def test_distill_from_exported_caches_saves_a_loadable_student(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], one_thread: None
) -> None:
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({"teacher_mnist": 3, "teacher_usps": 1}))
    out = tmp_path / "run"
    args = distill(out, "--cache", str(exports["a"]), "--cache", str(exports["b"]), "--weights", str(weights),
                   "--eval-domain", "mnist", "--eval-domain", "uci_digits", "--eval-limit", "40")  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "distilling 2 teacher(s) ['teacher_mnist', 'teacher_usps']" in printed
    for line in ("mnist", "uci_digits", "overall"):
        assert any(row.split()[:1] == [line] for row in printed.splitlines()), printed

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teachers"] == ["teacher_mnist", "teacher_usps"]
    history = json.loads((out / "history.json").read_text())
    assert len(history["steps"]) == 2 * 4  # 64 items / 16 per batch × 2 epochs
    assert (out / "logs" / "steps.csv").is_file()

    # the saved student reproduces the printed per-domain accuracy
    student = load_student(out / "student").eval()
    test = MultiDomainDataset(["mnist", "uci_digits"], "test", limit=40)
    with torch.no_grad():
        # batched as the engine evaluated (--batch-size 16): other batching may flip a near-tied argmax
        batches = list(DataLoader(test, batch_size=16, collate_fn=ImageCollator(28)))
        preds = torch.cat([student(b).logits.argmax(-1) for b in batches])
    labels, domains = (
        torch.cat([b["labels"] for b in batches]),
        torch.cat([b["domain"] for b in batches]),
    )
    for i, name in enumerate(["mnist", "uci_digits"]):
        rows = domains == i
        acc = float((preds[rows] == labels[rows]).float().mean())
        assert metrics["student"][name]["accuracy"] == pytest.approx(acc)
        assert f"{metrics['student'][name]['accuracy']:.4f}" in printed


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (
            lambda e, t: ["--cache", str(t / "nowhere.safetensors")],
            r"teacher cache file .*nowhere\.safetensors does not exist",
        ),
        (
            lambda e, t: ["--cache", str(e["a"]), "--cache", str(e["val"])],
            r"val\.safetensors \(teacher 'teacher_usps'\) was exported on another transfer set "
            + r".*use the same --domain/--split/--limit/--seed",
        ),
        (
            lambda e, t: ["--cache", str(e["a"]), "--limit", "80"],
            r"covers 64 samples but the transfer set has 80",
        ),
        (
            lambda e, t: ["--cache", str(e["a"]), "--cache", str(e["a"])],
            r"both hold teacher 'teacher_mnist'; pass each teacher's cache file once",
        ),
        (
            lambda e, t: [
                "--cache",
                str(e["a"]),
                "--cache",
                str(e["b"]),
                "--weights",
                str(t / "w.json"),
            ],
            r"'teacher_mnst' is not a teacher of the cache files .*Did you mean 'teacher_mnist'\?",
        ),
        (
            lambda e, t: ["--cache", str(e["a"]), "--student", "text"],
            r"--student text: student 'text' reads text but the domains hold image; pick one of \['digit', 'digit-fast'\]",
        ),
        (
            lambda e, t: ["--cache", str(e["a"]), "--student", "digit-fats"],
            r"--student: unknown student 'digit-fats': not a preset .* Did you mean 'digit-fast'\?",
        ),
        (
            lambda e, t: ["--cache", str(e["a"]), "--eval-domain", "yelp"],
            r"--eval-domain yelp holds text but the transfer domain 'mnist' holds image",
        ),
        (
            lambda e, t: ["--cache", str(e["a"]), "--engine-config", str(t / "engine.yaml")],
            r"--engine-config \S+engine\.yaml: unknown engine config key 'learning_rate'\. Did you mean 'lr'\?",
        ),
        (
            lambda e, t: ["--cache", str(e["a"]), "--temperature", "0"],
            r"--temperature: engine config temperature must be a finite number > 0, got 0\.0",
        ),
    ],
    ids=[
        "missing-file",
        "other-split",
        "other-size",
        "same-teacher-twice",
        "weights-typo",
        "wrong-student",
        "unknown-student",
        "eval-modality",
        "engine-config-typo",
        "temperature-flag",
    ],
)
def test_distill_bad_inputs_are_one_line_errors(
    exports: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make_args,
    message: str,
) -> None:
    import re

    (tmp_path / "w.json").write_text(json.dumps({"teacher_mnst": 1, "teacher_usps": 1}))
    (tmp_path / "engine.yaml").write_text("learning_rate: 0.1\n")
    code = main([*distill(tmp_path / "out"), *make_args(exports, tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("kgkd: error: ") and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert not (tmp_path / "out" / "student").exists()
