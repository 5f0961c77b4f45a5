"""``kgkd run / predict / eval / demo`` through ``kgkd.cli.main`` at smoke scale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kgkd.cli import main


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Path:
    """One smoke ``kgkd run`` of the digit recipe; its folder is shared by the tests below."""
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["-q", "run", "digits_transfer_quick", "--smoke", "--out", str(out), "--no-progress",
                 "--set", "signals.baselines=[uniform]"])  # fmt: skip
    assert code == 0
    return out


def test_run_writes_outputs_and_prints_table(digit_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metrics = json.loads((digit_run / "metrics.json").read_text())
    assert metrics["config"]["output"]["dir"] == str(digit_run)
    assert metrics["config"]["data"]["train_limit"] == 256  # the smoke block applied
    assert (digit_run / "student" / "model.safetensors").is_file()


def test_predict_image_npy(digit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kgkd.data import load_domain

    image = load_domain("mnist", "test", limit=10)[0]["image"][0].numpy()
    path = tmp_path / "digit.npy"
    np.save(path, image)
    capsys.readouterr()
    assert main(["predict", str(digit_run / "student"), "--image", str(path), "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].endswith("(predicted)")
    probs = [float(line.split("\t")[1]) for line in lines]
    assert probs == sorted(probs, reverse=True) and 0.0 < sum(probs) <= 1.0 + 1e-6


def test_eval_matches_metrics_json(digit_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metrics = json.loads((digit_run / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(digit_run / "student"), "--domain", "uci_digits", "--limit", "64"]) == 0
    out = capsys.readouterr().out
    reported = metrics["domains"]["uci_digits"]["student"]["accuracy"]
    assert f"accuracy {reported:.4f}" in out


def test_cli_errors_are_one_line(digit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "digits_transfr", "--out", str(tmp_path)]) == 2
    assert "Did you mean 'digits_transfer'" in capsys.readouterr().err
    assert main(["run", "digits_transfer_quick", "--set", "data.trian_limit=3"]) == 2
    assert "unknown config key 'data.trian_limit'. Did you mean 'data.train_limit'" in capsys.readouterr().err
    assert main(["predict", str(digit_run / "student"), "some text"]) == 2
    assert "reads images; pass --image" in capsys.readouterr().err
    assert main(["predict", str(digit_run / "student"), "--image", str(tmp_path / "nope.png")]) == 2
    assert "image file" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "no_student"), "--domain", "mnist"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_demo_and_run_help_list_configs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "sentiment_transfer_quick" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "quick cross-domain sentiment" in capsys.readouterr().out
