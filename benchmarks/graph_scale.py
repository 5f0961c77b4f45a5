"""Graph scale: time and peak memory of loading, validating and drawing generated kgkd graphs.

Graphs of 500, 5,000 and 20,000 domains (``graph_gen.generated_turtle``: the vocabulary of
``graphs/sentiment.ttl``, one teacher per 10 domains, 3 weighted similarTo links per domain)
are written to a temp folder. Every step runs in its own Python process, so each peak RSS
(``os.wait4``'s ru_maxrss) belongs to that step alone:

* ``load``     ``KnowledgeGraph.from_file`` (import time reported apart);
* ``validate`` load + ``KnowledgeGraph.validate`` (structural rules + shapes);
* ``draw``     load + ``draw_graph`` to a PNG (bounded canvas; summary view above the node budget);
* ``cli_validate`` / ``cli_show`` the user's commands ``kgkd graph validate FILE`` and
  ``kgkd graph show FILE --out X.png``, wall clock from process start to exit.

``wall s`` is the child's wall clock, ``cpu s`` its user + system CPU seconds (steadier than
wall time on a shared machine); ``import s`` / ``load s`` / ``step s`` are wall seconds inside
the child (import of kgkd.graph, ``from_file``, the step itself).

Run: ``python benchmarks/graph_scale.py [--scale smoke|quick|full]`` → ``results/graph_scale.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import benchmark_parser, finish, new_payload, parse_and_setup, shown
from graph_gen import write_generated

SIZES: dict[str, tuple[int, ...]] = {"smoke": (60,), "quick": (500, 5000), "full": (500, 5000, 20000)}
STEPS = ("load", "validate", "draw", "cli_validate", "cli_show")

#: The child process of the in-library steps: prints one JSON line of its own timings.
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from kgkd.graph.knowledge_graph import KnowledgeGraph
t1 = time.perf_counter()
kg = KnowledgeGraph.from_file(sys.argv[2])
t2 = time.perf_counter()
extra = {}
if sys.argv[1] == "validate":
    kg.validate()
elif sys.argv[1] == "draw":
    from kgkd.graph.draw import draw_graph
    draw_graph(kg, sys.argv[3])
    from PIL import Image
    with Image.open(sys.argv[3]) as im:
        extra["png_pixels"] = list(im.size)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "step_s": t3 - t2, "triples": len(kg), **extra}))
"""


def run_measured(cmd: Sequence[str], timeout: float, cwd: Path) -> dict[str, Any]:
    """Run ``cmd`` in ``cwd``; return its wall seconds, peak RSS (MB, this child only), exit code and stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env, cwd=cwd)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    return {
        "wall_s": round(wall, 2),
        # CPU seconds of this child (user + system): on a shared machine, less noisy than wall time
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "rc": proc.returncode,
        "stdout": stdout,
        "stderr_tail": stderr.strip().splitlines()[-1:] if proc.returncode else [],
    }


def measure(step: str, graph: Path, png: Path, timeout: float) -> dict[str, Any]:
    """One step on one graph, in a fresh process."""
    if step.startswith("cli_"):
        action = step[4:]
        cmd = [sys.executable, "-m", "kgkd", "-q", "graph", action, str(graph)]
        if action == "show":
            cmd += ["--out", str(png)]
        row = run_measured(cmd, timeout, graph.parent)
        row.pop("stdout")
        return row
    row = run_measured([sys.executable, "-c", CHILD, step, str(graph), str(png)], timeout, graph.parent)
    lines = row.pop("stdout").strip().splitlines()
    if row["rc"] == 0 and lines:
        inner = json.loads(lines[-1])
        row.update({k: round(v, 2) if isinstance(v, float) else v for k, v in inner.items()})
    return row


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table: one line per (domains, step)."""
    head = (
        f"{'domains':>8}  {'step':<13}{'wall s':>8}{'cpu s':>8}{'import s':>9}{'load s':>8}{'step s':>8}"
        f"{'peak MB':>9}  note"
    )
    lines = [head, "-" * len(head)]
    def cell(r: dict[str, Any], key: str) -> str:
        return f"{r[key]:.2f}" if isinstance(r.get(key), (int, float)) else "-"

    for r in rows:
        note = "" if r["rc"] == 0 else f"FAILED rc={r['rc']} {' '.join(r['stderr_tail'])}"
        if r.get("png_pixels"):
            note = f"png {r['png_pixels'][0]}x{r['png_pixels'][1]} " + note
        lines.append(
            f"{r['domains']:>8}  {r['step']:<13}{cell(r, 'wall_s'):>8}{cell(r, 'cpu_s'):>8}{cell(r, 'import_s'):>9}"
            f"{cell(r, 'load_s'):>8}{cell(r, 'step_s'):>8}{r['peak_rss_mb']:>9.0f}  {note}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = benchmark_parser(__doc__, STEPS, seed_help="seed of the graph generator")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="domain counts (overrides --scale)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a step is killed")
    parser.add_argument("--results-name", default="graph_scale", help="write results/<NAME>.json")
    args = parse_and_setup(parser, argv)
    sizes = tuple(args.sizes or SIZES[args.scale])
    steps = [s for s in STEPS if not args.only or s in args.only]
    started = time.perf_counter()
    payload = new_payload("graph_scale", args.scale, args.seed)
    payload["sizes"] = list(sizes)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kgkd_graph_scale_") as tmp:
        for n in sizes:
            graph = write_generated(Path(tmp) / f"generated_{n}.ttl", n, seed=args.seed)
            for step in steps:
                row = {"domains": n, "step": step, **measure(step, graph, Path(tmp) / f"{n}_{step}.png", args.timeout)}
                rows.append(row)
                print(format_table([row]).splitlines()[-1], flush=True)
    payload["rows"] = rows
    payload["tasks"] = {"graph_scale": {f"{r['domains']}/{r['step']}": r for r in rows}}
    print()
    print(format_table(rows))
    finish(payload, started, args.results_name)
    failed = [f"{r['domains']}/{r['step']}" for r in rows if r["rc"] != 0]
    if failed:
        print(f"failed steps: {', '.join(failed)} (see stderr_tail in {shown(Path('benchmarks/results'))})")
    return payload


if __name__ == "__main__":
    main()
