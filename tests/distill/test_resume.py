"""Checkpoint / resume: a run killed mid-epoch and resumed ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kgkd.distill.checkpoint import (
    flatten_optimizer,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    unflatten_optimizer,
)
from kgkd.errors import CheckpointError

WORKER = Path(__file__).with_name("_resume_worker.py")


def _run(*args: str, expect: int = 0) -> None:
    proc = subprocess.run(
        [sys.executable, str(WORKER), *args], check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180
    )
    assert proc.returncode == expect, proc.stdout


def test_resume_after_kill_is_bit_identical(tmp_path: Path) -> None:
    # 44 samples / batch 8 → 6 steps per epoch, 18 in all; checkpoints every 4 steps.
    # The first process dies hard after step 10: the newest checkpoint is step 8
    # (epoch 2, batch 2 of 6), so the resume continues mid-epoch and across an epoch
    # boundary, with dropout and input-noise augmentation drawing from restored RNGs.
    ckpt = tmp_path / "ckpt"
    _run("--ckpt", str(ckpt), "--out", str(tmp_path), "--kill-at", "10", expect=17)
    newest = latest_checkpoint(ckpt)
    assert newest is not None and newest.name == "ckpt-00000008.json"
    state = load_checkpoint(newest)
    assert (state.step, state.epoch, state.position) == (8, 1, 2)
    assert not list(tmp_path.glob("*.safetensors"))

    _run("--ckpt", str(ckpt), "--out", str(tmp_path), "--resume")  # resumed run, then uninterrupted run
    full = load_file(str(tmp_path / "full.safetensors"))
    resumed = load_file(str(tmp_path / "resumed.safetensors"))
    assert sorted(full) == sorted(resumed)
    assert any(k.startswith("loss/") for k in full), "the feature projector must be checkpointed too"
    for key in full:
        assert torch.equal(full[key], resumed[key]), key
    curve_full = json.loads((tmp_path / "full.json").read_text())
    curve_resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert len(curve_full) == 18 and curve_full == curve_resumed
    assert sum(curve_full[-6:]) < sum(curve_full[:6])  # it did learn


def test_optimizer_state_round_trips_through_tensors_and_json() -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, meta = flatten_optimizer(opt.state_dict())
    meta = json.loads(json.dumps(meta))  # must survive JSON
    other = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    other.load_state_dict(unflatten_optimizer(tensors, meta))
    assert other.param_groups[0]["lr"] == 0.1 and other.param_groups[0]["betas"] == (0.9, 0.999)
    for key, value in opt.state_dict()["state"][0].items():
        assert torch.equal(other.state_dict()["state"][0][key], value)


def test_corrupt_checkpoints_raise_checkpoint_error(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    for step in (4, 8, 12):
        json_path = save_checkpoint(
            folder, step=step, epoch=0, position=step, tensors={"student/w": torch.randn(5, 5)}, meta={}, keep=2
        )
    assert sorted(p.name for p in folder.glob("*.json")) == ["ckpt-00000008.json", "ckpt-00000012.json"]
    assert load_checkpoint(folder).step == 12
    tensor_path = json_path.with_suffix(".safetensors")

    data = tensor_path.read_bytes()
    tensor_path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(CheckpointError, match=r"ckpt-00000012\.safetensors.*corrupt or truncated"):
        load_checkpoint(json_path)
    tensor_path.write_bytes(data)

    text = json_path.read_text()
    json_path.write_text(text[: len(text) // 3])
    with pytest.raises(CheckpointError, match=r"ckpt-00000012\.json.*corrupt or truncated"):
        load_checkpoint(folder)

    json_path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match=r"lacks .*not a kgkd training checkpoint"):
        load_checkpoint(json_path)
    with pytest.raises(CheckpointError, match=r"no checkpoint .* in folder"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=r"ckpt-00000099\.json' does not exist"):
        load_checkpoint(folder / "ckpt-00000099.json")
