"""Core helpers: atomic writes, registries, label maps, CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kgkd.cli import main
from kgkd.errors import ConfigError, KGKDError, LabelMapError
from kgkd.labels import LabelMap
from kgkd.utils import Registry, atomic_path, atomic_write_json, seed_everything


def test_atomic_write_json_replaces_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_atomic_path_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "weights.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half-written")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]


def test_registry_suggests_closest_name() -> None:
    reg: Registry[type] = Registry("encoder")

    @reg.register("sage")
    class Sage:
        pass

    assert reg.get("sage") is Sage and "sage" in reg and reg.names() == ["sage"]
    with pytest.raises(ConfigError, match=r"unknown encoder 'sag'\. Did you mean 'sage'\?"):
        reg.get("sag")
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("sage")(int)


def test_label_map_matrix_and_coverage() -> None:
    lm = LabelMap(("cat", "dog"), ("dog", "bird", "cat"), (2, 0), teacher="t1")
    m = lm.matrix()
    assert m.tolist() == [[0, 0, 1], [1, 0, 0]]
    assert lm.covered().tolist() == [True, False, True]
    probs = torch.tensor([[0.25, 0.75]])
    assert torch.allclose(probs @ m, torch.tensor([[0.75, 0.0, 0.25]]))
    assert LabelMap.by_name(["a", "z"], ["a", "b"]).mapping == (0, -1)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [((0,), "has 1 entries but the teacher predicts 2 labels"),
     ((0, 5), "maps to student index 5, outside 0..1"),
     ((-1, -1), "maps none of its labels")],
)
def test_label_map_errors_name_teacher(mapping: tuple[int, ...], message: str) -> None:
    with pytest.raises(LabelMapError, match=message) as err:
        LabelMap(("x", "y"), ("a", "b"), mapping, teacher="teacher_svhn")
    assert "teacher_svhn" in str(err.value)
    assert isinstance(err.value, KGKDError)


def test_seed_everything_reproducible() -> None:
    seed_everything(7)
    a = torch.rand(3)
    seed_everything(7)
    assert torch.equal(a, torch.rand(3))


def test_cli_help_lists_groups(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "knowledge graph" in out and "COMMAND" in out


def test_atomic_write_uses_normal_file_mode(tmp_path: Path) -> None:
    import os

    target = atomic_write_json(tmp_path / "m.json", {})
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
