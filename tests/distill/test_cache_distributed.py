"""Distributed cache build: ``torchrun`` with 2 gloo ranks on CPU equals a 1-process build, and a rank
killed midway leaves a cache that the next run completes without redoing finished shards."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_cache import ToyData, collate, teacher

from kgkd.distill.cache import TeacherCache

pytestmark = pytest.mark.usefixtures("one_thread")
TESTS = Path(__file__).parent

RANK_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from test_cache import ToyData, collate, teacher
    from kgkd.distill.cache import TeacherCache
    from kgkd.distill.distributed import cleanup, init_distributed

    ctx = init_distributed("cpu")
    t = teacher()
    forward = t.module.forward
    kill_at = int(os.environ.get("KILL_RANK1_AT", "0"))
    def maybe_die(x):
        if ctx.rank == 1 and t.module.calls + 1 == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # a real kill in the middle of the build
        return forward(x)
    t.module.forward = maybe_die
    cache = TeacherCache.build(t, ToyData(48), collate, batch_size=4, features=["hidden"], shard_size=4,
                               path={path!r}, dist_ctx=ctx, show_progress=False)
    with open(os.path.join({out!r}, f"report{{ctx.rank}}.json"), "w") as fh:  # ranks share stdout: files don't mix
        json.dump(cache.report.__dict__, fh)
    cleanup(ctx)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun(script: Path, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "OMP_NUM_THREADS": "1", **env_extra}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(script)]  # fmt: skip
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=240, env=env)


def reports(folder: Path) -> dict[int, dict]:
    return {r: json.loads((folder / f"report{r}.json").read_text()) for r in (0, 1)}


def test_two_rank_build_killed_then_completed_equals_one_rank(tmp_path: Path) -> None:
    path = tmp_path / "toy_teacher__toy48"
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT.format(tests=str(TESTS), path=str(path), out=str(tmp_path)))
    killed = torchrun(script, {"KILL_RANK1_AT": "3"})  # rank 1 dies in its 3rd shard (one batch per shard)
    assert killed.returncode != 0, killed.stdout + killed.stderr
    assert not (path / "index.json").exists()
    done_before = {p.name for p in path.glob("shard-*.json")}
    assert {"shard-00001.json", "shard-00003.json"} <= done_before  # rank 1's two finished shards survived
    assert "shard-00005.json" not in done_before

    rerun = torchrun(script, {})
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    got = reports(tmp_path)
    built = set(got[0]["built"]) | set(got[1]["built"])
    # every shard is built by exactly one rank (rank r owns shards r, r+2, ...); finished ones are kept
    assert all(int(n[6:11]) % 2 == r for r in (0, 1) for n in got[r]["built"] + got[r]["kept"])
    assert not built & {n.replace(".json", ".safetensors") for n in done_before}
    assert len(built) + len(done_before) == 12

    one = TeacherCache.build(teacher(), ToyData(48), collate, batch_size=4, features=["hidden"], shard_size=4,
                             path=tmp_path / "one_rank", show_progress=False)  # fmt: skip
    two = TeacherCache.load(path, verify=True)
    every = torch.arange(48)
    # same batches in other processes: equal within fp16 storage rounding of the same fp32 values
    assert torch.allclose(two.lookup(every).logits, one.lookup(every).logits, rtol=1e-3, atol=1e-3)
    assert torch.allclose(two.lookup(every).features["hidden"], one.lookup(every).features["hidden"],
                          rtol=1e-3, atol=1e-3)  # fmt: skip
