"""Scale: sharded teacher caches from 10k to 1M items — build and cached-distillation speed and memory.

A small real teacher (the shipped ccexam MNIST net, ``load_ccexam_teacher("mnist")``, features
``pooled``) runs over transfer sets made of the 10,000 real MNIST-10k train+val+test images
**repeated** to 10k / 100k / 1M items (item ``i`` is image ``i mod 10,000``; the cache does not
know, every item is computed and stored). For each size, in a fresh process each (so peak RSS
is that step's own):

* cache build (sharded, fp16, default shard size): items/s and peak RSS;
* one distillation epoch with the real ``DistillationEngine`` (a tiny student, the cache read
  through ``CachedTeacher``, shuffled batches): items/s and peak RSS;
* the cache's size on disk.

Plus the build with 2 ``torchrun`` ranks (gloo, CPU) against 1 rank, and a resume test: a 100k
build killed (SIGKILL) at ~50 % of its shards, rerun: shards redone and whether the finished cache
is identical (shard checksums) to the uninterrupted build.

    python benchmarks/scale.py [--scale smoke|quick|full] [--threads 1]

Writes ``benchmarks/results/scale.json`` (``{"sizes": {...}, "ranks": {...}, ...}``).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: scale → (sizes, size for the rank comparison, size for the resume test, shard size)
PLANS: dict[str, tuple[tuple[int, ...], int, int, int]] = {
    "smoke": ((1_200,), 1_200, 1_200, 100),
    "quick": ((10_000, 100_000), 10_000, 100_000, 4096),
    "full": ((10_000, 100_000, 1_000_000), 100_000, 100_000, 4096),
}
BATCH = 256


# --------------------------------------------------------------------------- worker side
class RepeatedDigits(torch.utils.data.Dataset):
    """``n`` items cycling through the real MNIST-10k images (all splits); ``index`` = position."""

    name = "mnist_repeated"

    def __init__(self, n: int) -> None:
        from kgkd.data import load_domain

        parts = [load_domain("mnist", s) for s in ("train", "val", "test")]
        self.images = torch.cat([torch.from_numpy(p.images).unsqueeze(1) for p in parts])  # uint8
        self.labels = torch.cat([torch.from_numpy(p.labels) for p in parts])
        self.base = "|".join(p.fingerprint() for p in parts)
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = i % len(self.images)
        return {"image": self.images[j].float().div_(255.0), "label": int(self.labels[j]), "domain": 0, "index": i}

    def fingerprint(self) -> str:
        return f"repeat{self.n}:{self.base}"


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_build(size: int, folder: Path, shard_size: int) -> dict[str, Any]:
    """Build (or finish) the cache; under torchrun each rank builds its share."""
    from kgkd.data import ImageCollator
    from kgkd.distill.cache import TeacherCache
    from kgkd.distill.distributed import cleanup, init_distributed
    from kgkd.models import load_ccexam_teacher

    ctx = init_distributed("cpu")
    data, teacher = RepeatedDigits(size), load_ccexam_teacher("mnist")
    start = time.perf_counter()
    cache = TeacherCache.build(teacher, data, ImageCollator(28), batch_size=BATCH, features=["pooled"],
                               path=folder, shard_size=shard_size, show_progress=False,
                               dist_ctx=ctx if ctx.is_distributed else None)  # fmt: skip
    seconds = time.perf_counter() - start
    report = cache.report.__dict__ if cache.report else {}
    cleanup(ctx)
    return {"rank": ctx.rank, "seconds": seconds, "items_per_s": size / seconds, "peak_rss_mb": peak_rss_mb(),
            "built": len(report.get("built", [])), "kept": len(report.get("kept", []))}  # fmt: skip


class _Student(torch.nn.Module):
    """A tiny digit student: 4×4 average pool → 49 → 32 → 10."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.AvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(49, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
        )  # fmt: skip

    def forward(self, batch: dict[str, Any]) -> Any:
        from kgkd.models.base import ModelOutput

        return ModelOutput(self.net(batch["pixels"]), {})


def worker_distill(size: int, folder: Path) -> dict[str, Any]:
    """One shuffled distillation epoch reading the cache lazily through ``CachedTeacher``."""
    from kgkd.data import ImageCollator
    from kgkd.data.specs import DIGIT_LABELS
    from kgkd.distill.cache import CachedTeacher, TeacherCache
    from kgkd.distill.config import EngineConfig
    from kgkd.distill.engine import DistillationEngine
    from kgkd.distill.losses import build_loss
    from kgkd.distill.weighting import UniformWeighting
    from kgkd.labels import LabelMap

    data = RepeatedDigits(size)
    cached = CachedTeacher(TeacherCache.load(folder))
    cfg = EngineConfig(epochs=1, batch_size=BATCH, seed=0, show_progress=False, device="cpu", log_every=10**9)
    engine = DistillationEngine(_Student(), [cached], build_loss("combined"), UniformWeighting(1), cfg,
                                [LabelMap.identity(DIGIT_LABELS, cached.name)])  # fmt: skip
    start = time.perf_counter()
    engine.fit(data, collate_fn=ImageCollator(28))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "items_per_s": size / seconds, "peak_rss_mb": peak_rss_mb()}


# --------------------------------------------------------------------------- driver side
def _worker_cmd(args: list[str], threads: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--threads", str(threads), *args]


def _run_json(cmd: list[str], env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed ({' '.join(cmd)}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]


def _disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.suffix in (".safetensors", ".json")) / 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _torchrun(args: list[str], threads: int, nproc: int, result_dir: Path) -> list[dict[str, Any]]:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(Path(__file__).resolve()), "--threads", str(threads), *args,
           "--result-dir", str(result_dir)]  # fmt: skip
    _run_json(cmd, {**os.environ, "OMP_NUM_THREADS": str(threads)})
    return [json.loads(p.read_text()) for p in sorted(result_dir.glob("rank*.json"))]


def _checksums(folder: Path) -> list[str]:
    return [s["sha256"] for s in json.loads((folder / "index.json").read_text())["shards"]]


def resume_after_kill(size: int, shard_size: int, work: Path, threads: int, reference: Path | None) -> dict[str, Any]:
    """Kill a build once ~half its shards are finished, rerun it, count redone shards, compare checksums."""
    folder = work / f"resume_{size}"
    total = -(-size // shard_size)
    proc = subprocess.Popen(_worker_cmd(["--worker", "build", "--size", str(size), "--folder", str(folder),
                                         "--shard-size", str(shard_size)], threads),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    while proc.poll() is None and len(list(folder.glob("shard-*.json"))) < total // 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = len(list(folder.glob("shard-*.json")))
    (rerun,) = _run_json(_worker_cmd(["--worker", "build", "--size", str(size), "--folder", str(folder),
                                      "--shard-size", str(shard_size)], threads))  # fmt: skip
    if reference is None:
        reference = work / f"resume_ref_{size}"
        _run_json(_worker_cmd(["--worker", "build", "--size", str(size), "--folder", str(reference),
                               "--shard-size", str(shard_size)], threads))  # fmt: skip
    return {
        "items": size, "shards": total, "finished_before_kill": finished, "kept": rerun["kept"],
        "redone": rerun["built"] - (total - finished), "rebuilt_after_kill": rerun["built"],
        "same_result": _checksums(folder) == _checksums(reference),
    }  # fmt: skip


def measure_size(size: int, work: Path, shard_size: int, threads: int) -> tuple[dict[str, Any], dict[str, float]]:
    """Build a cache of ``size`` items in ``work/cache_<size>`` and run one cached epoch, each in its own process."""
    folder = work / f"cache_{size}"
    print(f"[scale] {size:,} items: build ...", flush=True)
    (build,) = _run_json(_worker_cmd(["--worker", "build", "--size", str(size), "--folder", str(folder),
                                      "--shard-size", str(shard_size)], threads))  # fmt: skip
    print(f"[scale] {size:,} items: build {build['items_per_s']:.0f} items/s; distill epoch ...", flush=True)
    (dist,) = _run_json(_worker_cmd(["--worker", "distill", "--size", str(size), "--folder", str(folder)], threads))
    entry = {
        "build": {k: round(build[k], 1) for k in ("items_per_s", "peak_rss_mb")},
        "distill": {k: round(dist[k], 1) for k in ("items_per_s", "peak_rss_mb")},
        "disk_mb": round(_disk_mb(folder), 2),
    }
    return entry, {"build": round(build["seconds"], 1), "distill": round(dist["seconds"], 1)}


def drive(scale: str, threads: int) -> dict[str, Any]:
    import _common as C

    sizes, rank_size, resume_size, shard_size = PLANS[scale]
    payload = C.new_payload("scale", scale, 0)
    payload.pop("tasks")
    payload["notes"] = (
        "Teacher: the shipped ccexam MNIST net (load_ccexam_teacher('mnist'), feature 'pooled', fp16 cache). "
        "Transfer sets: the 10,000 real MNIST-10k images repeated to each size (item i = image i mod 10,000). "
        "Every step runs in its own process; peak RSS is that process's ru_maxrss (includes Python+torch, ~300 MB). "
        f"Distillation: one shuffled epoch, batch {BATCH}, a 2-layer student, real DistillationEngine. "
        f"{threads} torch thread(s) per process; shared 2-core machine, so figures carry noise from other jobs."
    )
    payload.update(sizes={}, ranks={}, details={"shard_size": shard_size, "seconds": {}, "ranks": {}})
    work = Path(tempfile.mkdtemp(prefix="kgkd_scale_"))
    try:
        for size in sizes:
            folder = work / f"cache_{size}"
            entry, seconds = measure_size(size, work, shard_size, threads)
            payload["sizes"][str(size)] = entry
            payload["details"]["seconds"][str(size)] = seconds
            print(f"[scale] {size:,} items: {payload['sizes'][str(size)]}", flush=True)
            if size == resume_size:
                print(f"[scale] resume after kill at ~50 % of {size:,} ...", flush=True)
                payload["resume"] = resume_after_kill(size, shard_size, work, threads, folder)
            if size != rank_size:
                shutil.rmtree(folder)
        for nproc in (1, 2):
            print(f"[scale] {nproc} rank(s) build of {rank_size:,} items ...", flush=True)
            folder = work / f"ranks_{nproc}"
            results = _torchrun(["--worker", "build", "--size", str(rank_size), "--folder", str(folder),
                                 "--shard-size", str(shard_size)], threads, nproc, work / f"results_{nproc}")  # fmt: skip
            slowest = max(r["seconds"] for r in results)
            payload["ranks"][str(nproc)] = {"items_per_s": round(rank_size / slowest, 1)}
            payload["details"]["ranks"][str(nproc)] = {
                "items": rank_size, "peak_rss_mb_per_rank": round(max(r["peak_rss_mb"] for r in results), 1)}  # fmt: skip
            if nproc == 2:
                same = _checksums(folder) == _checksums(work / "ranks_1")
                payload["details"]["ranks"]["2"]["same_shards_as_1_rank"] = same
        if "resume" not in payload:
            payload["resume"] = resume_after_kill(resume_size, shard_size, work, threads, None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return payload


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--worker" in argv:  # a measured step: keep the process lean (no recipe/benchmark imports)
        return worker_main(argv)
    import _common as C

    parser = C.benchmark_parser(__doc__, tasks=(), seed_help=None)
    parser.add_argument("--out", default="scale", help="results name (benchmarks/results/<out>.json)")
    parser.add_argument("--add-size", type=int, default=None, metavar="N",
                        help="measure only a transfer set of N items (build + distill + disk) and add it to an "
                             "existing results file (e.g. 1000000 after a --scale quick run)")  # fmt: skip
    args = C.parse_and_setup(parser, argv)
    started = time.perf_counter()
    if args.add_size is not None:
        path = C.RESULTS_DIR / f"{args.out}.json"
        payload = json.loads(path.read_text())
        work = Path(tempfile.mkdtemp(prefix="kgkd_scale_"))
        try:
            entry, seconds = measure_size(args.add_size, work, PLANS[payload["scale"]][3], args.threads)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        payload["sizes"][str(args.add_size)] = entry
        payload["details"]["seconds"][str(args.add_size)] = seconds
        payload["details"].setdefault("added", []).append({"size": args.add_size, "command": C.command_line()})
        C.write_result(args.out, payload)
        print(f"added {args.add_size:,} items to {C.shown(path)}: {entry}", flush=True)
        return 0
    payload = drive(args.scale, args.threads)
    C.finish(payload, started, args.out)
    return 0


def worker_main(argv: list[str]) -> int:
    """``--worker build|distill --size N --folder DIR [--shard-size S] [--threads T]``: one measured step."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=["build", "distill"], required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--shard-size", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--result-dir", type=Path, default=None)  # torchrun: one file per rank
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker == "build":
        result = worker_build(args.size, args.folder, args.shard_size)
    else:
        result = worker_distill(args.size, args.folder)
    if args.result_dir is not None:
        args.result_dir.mkdir(parents=True, exist_ok=True)
        (args.result_dir / f"rank{result.get('rank', 0)}.json").write_text(json.dumps(result))
    else:
        print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
