"""Two real kgkd processes building the same teacher cache at once: no corruption, no duplicated work."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from test_cache import ToyData, collate, teacher

from kgkd.distill.cache import TeacherCache

pytestmark = pytest.mark.usefixtures("one_thread")
TESTS = Path(__file__).parent

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from test_cache import ToyData, collate, teacher
    from kgkd.distill.cache import TeacherCache

    t = teacher()
    forward = t.module.forward
    def slow(x):
        time.sleep(0.15)  # long enough that both processes are building at the same time
        return forward(x)
    t.module.forward = slow
    Path({ready!r}).touch()
    while not Path({go!r}).exists():
        time.sleep(0.01)
    cache = TeacherCache.get_or_build(t, ToyData(40), collate, path={path!r}, batch_size=4,
                                      features=["hidden"], shard_size=4, show_progress=False)
    calls, t.module.calls = t.module.calls, 0
    TeacherCache.get_or_build(t, ToyData(40), collate, path={path!r} + ".safetensors", batch_size=4,
                              features=["hidden"], show_progress=False)
    print(json.dumps({{"calls": calls, "report": cache.report.__dict__, "single_calls": t.module.calls}}))
    """
)


def race(tmp_path: Path, path: Path) -> list[dict]:
    """Start two worker processes, release them together, return what each did."""
    go = tmp_path / "go"
    procs = []
    for k in range(2):
        script = WORKER.format(tests=str(TESTS), ready=str(tmp_path / f"ready{k}"), go=str(go), path=str(path))
        procs.append(subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
    deadline = time.time() + 120
    while not all((tmp_path / f"ready{k}").exists() for k in range(2)):
        assert time.time() < deadline and all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.02)
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_two_processes_building_one_cache(tmp_path: Path) -> None:
    """Sharded: the two split the shards. Single file: one builds, the other waits and reuses it."""
    path = tmp_path / "toy_teacher__toy40"
    a, b = race(tmp_path, path)
    built_a, built_b = set(a["report"]["built"]), set(b["report"]["built"])
    assert not built_a & built_b  # no shard computed twice
    assert len(built_a | built_b) == 10 and built_a and built_b  # both worked, together they did all
    assert a["calls"] + b["calls"] == 10
    cache = TeacherCache.load(path, verify=True)
    clean = TeacherCache.build(teacher(), ToyData(40), collate, batch_size=4, features=["hidden"], shard_size=4,
                               path=tmp_path / "clean", show_progress=False)  # fmt: skip
    every = torch.arange(40)  # identical batches in every process: identical values
    assert torch.equal(cache.lookup(every).logits, clean.lookup(every).logits)
    assert not list(path.glob(".*.tmp"))

    assert sorted([a["single_calls"], b["single_calls"]]) == [0, 10]
    assert TeacherCache.load(str(path) + ".safetensors").num_samples == 40
