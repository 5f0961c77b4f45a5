"""``kgkd teachers cache``: a site exports its teacher's outputs on a shared transfer set."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kgkd.cli import main
from kgkd.distill.cache import TeacherCache
from kgkd.errors import CacheError


def test_teachers_cache_exports_importable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGKD_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "site_a_usps_on_uci.safetensors"
    args = ["teachers", "cache", "--teacher", "teacher_usps", "--domain", "uci_digits",
            "--split", "val", "--limit", "64", "--dtype", "fp32", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    cache = TeacherCache.import_(out, expected_num_samples=64, expected_labels=10)
    logits = cache.lookup(torch.arange(64)).logits
    assert logits.shape == (64, 10) and torch.isfinite(logits).all()
    with pytest.raises(CacheError, match="covers 64 samples but the transfer set has 100"):
        TeacherCache.import_(out, expected_num_samples=100)


def test_teachers_cache_unknown_teacher_names_train_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KGKD_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["teachers", "cache", "--teacher", "teacher_yelp", "--domain", "yelp"])
    assert code == 2
    assert "kgkd teachers train --domain yelp" in capsys.readouterr().err
