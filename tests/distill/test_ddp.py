"""DDP: two gloo ranks under torchrun end with the weights of one process on the same global batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ddp_worker import run
from _tiny_problem import TinyStudent, make_teachers

WORKER = Path(__file__).with_name("_ddp_worker.py")


def test_two_rank_torchrun_matches_single_process(tmp_path: Path) -> None:
    # 48 samples; 2 ranks × batch 6 see exactly the samples of one process with batch 12
    # (DistributedSampler splits the same seeded permutation), the losses are per-sample
    # means and DDP averages gradients, so both layouts do the same math up to float order.
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(WORKER), "--batch", "6", "--out", str(tmp_path),
    ]
    proc = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:]
    report = json.loads((tmp_path / "ddp.json").read_text())
    assert report["world_size"] == 2

    single = run(batch=12, out=None)
    assert single.dist.world_size == 1
    ddp = load_file(str(tmp_path / "ddp.safetensors"))
    mine = {f"student/{k}": v for k, v in single.student.state_dict().items()}
    mine.update({f"loss/{k}": v for k, v in single.loss.state_dict().items()})
    assert sorted(ddp) == sorted(mine) and any(k.startswith("loss/") for k in mine)
    torch.manual_seed(0)  # the untrained student, built as run() builds it: the weights really moved
    make_teachers()
    untrained = TinyStudent().state_dict()
    moved = max((mine[f"student/{k}"] - v).abs().max().item() for k, v in untrained.items())
    assert moved > 1e-2
    for key, value in mine.items():
        torch.testing.assert_close(ddp[key], value, rtol=1e-4, atol=1e-5, msg=key)
    # validation metrics are gathered over ranks (21 samples: uneven shards, no duplicates)
    last_ddp, last_single = report["epochs"][-1], single.history.epochs[-1]
    assert last_ddp["val/n"] == 21.0 == last_single["val/n"]
    # weights agree to float order only, so one of the 21 argmaxes may flip on another CPU/BLAS
    assert abs(last_ddp["val/accuracy"] - last_single["val/accuracy"]) <= 1 / 21 + 1e-9
    assert abs(last_ddp["train_loss"] - last_single["train_loss"]) < 1e-4
