"""Seed spread of the held-out comparison: ``transfer_quality`` at several seeds, mean ± sd per weighting.

Each seed draws other train/val/test subsets, refits every weighting's signals and
distils every student anew; the teachers are the same checkpoints (they are trained
once, not per seed). Per task and weighting this reports the held-out macro accuracy
at each seed, its mean and standard deviation, and the paired difference to uniform
averaging (same seed, same data), so a one-seed gap can be told apart from noise.

Seed 0 reuses ``results/transfer_quality.json`` when that file is a run at the same
scale and seed covering the same tasks (the pipeline is deterministic with one
thread: two full runs gave identical held-out numbers); other seeds write
``results/transfer_quality_seed<N>.json``. Writes ``results/seeds.json`` and ``results/SEEDS.md``.

    python benchmarks/seeds.py --scale full --seeds 0 1 2
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _common as C
import transfer_quality as TQ

KINDS = ("ensembles", "students")


def seed_payload(scale: str, seed: int, only: Sequence[str]) -> tuple[dict[str, Any], str]:
    """The transfer_quality payload of ``seed`` (reused or freshly run) and where it came from."""
    committed = C.RESULTS_DIR / "transfer_quality.json"
    if seed == 0 and committed.is_file():
        payload = json.loads(committed.read_text())
        if payload.get("scale") == scale and payload.get("seed") == seed and set(only) <= set(payload.get("tasks", {})):
            return payload, f"{C.shown(committed)} (run started {payload.get('started')})"
    name = f"transfer_quality_seed{seed}"
    return TQ.run(scale, seed, only, result_name=name), f"results/{name}.json (this run)"


def _macro(payload: dict[str, Any], task: str, kind: str) -> dict[str, float]:
    return {w: m["accuracy"] for w, m in payload["tasks"][task]["macro_mean"][kind].items()}


def summarise(per_seed: dict[int, dict[str, Any]], only: Sequence[str]) -> dict[str, Any]:
    """Per task, kind and weighting: accuracy per seed, mean, sd, and the paired difference to uniform."""
    out: dict[str, Any] = {}
    for task in only:
        out[task] = {}
        for kind in KINDS:
            tables = {s: _macro(p, task, kind) for s, p in per_seed.items()}
            names = [w for w in next(iter(tables.values())) if all(w in t for t in tables.values())]
            rows = {}
            for w in names:
                values = [tables[s][w] for s in per_seed]
                diffs = [tables[s][w] - tables[s]["uniform"] for s in per_seed] if "uniform" in names else []
                rows[w] = {
                    "per_seed": dict(zip(map(str, per_seed), values)),
                    "mean": statistics.fmean(values),
                    "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "minus_uniform_mean": statistics.fmean(diffs) if diffs else None,
                    "minus_uniform_sd": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
                    "seeds_above_uniform": sum(d > 0 for d in diffs),
                }  # fmt: skip
            out[task][kind] = rows
    return out


def _signed(row: dict[str, Any]) -> str:
    """``+1.2 ± 0.8`` (percentage points; a rounded zero is shown as +0.0)."""
    mean = f"{100 * row['minus_uniform_mean']:+.1f}".replace("-0.0", "+0.0")
    return f"{mean} ± {100 * row['minus_uniform_sd']:.1f}"


def format_summary(summary: dict[str, Any], seeds: Sequence[int]) -> str:
    lines = []
    for task, kinds in summary.items():
        for kind, rows in kinds.items():
            lines.append(f"[{task}] {kind}: held-out macro accuracy % over seeds {list(seeds)}")
            header = ["weighting", *[f"seed {s}" for s in seeds], "mean ± sd", "vs uniform (paired)", "seeds > uniform"]
            table = []
            for w, r in rows.items():
                diff = "" if r["minus_uniform_mean"] is None or w == "uniform" else \
                    _signed(r)
                above = "" if w == "uniform" else f"{r['seeds_above_uniform']}/{len(seeds)}"
                table.append([w, *[C.pct(r["per_seed"][str(s)]) for s in seeds],
                              f"{100 * r['mean']:.1f} ± {100 * r['sd']:.1f}", diff, above])  # fmt: skip
            widths = [max(len(h), *(len(x[i]) for x in table)) for i, h in enumerate(header)]
            lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
            lines += ["  ".join(c.ljust(w) for c, w in zip(x, widths)) for x in table]
    return "\n".join(lines)


def markdown_section(payload: dict[str, Any]) -> str:
    """Markdown tables of :func:`summarise` (for RESULTS.md / the README)."""
    seeds = payload["seeds"]
    parts = [f"## Seed spread: held-out macro accuracy % over seeds {seeds} (`seeds.py`)",
             ("Each seed draws other data subsets, refits the signals and distils new students (same teachers). "
              "`vs uniform`: paired difference to uniform averaging at the same seed, mean ± sd.")]  # fmt: skip
    for task, kinds in payload["summary"].items():
        for kind, rows in kinds.items():
            head = "| weighting | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± sd | vs uniform | seeds > uniform |"
            sep = "|---" * (len(seeds) + 4) + "|"
            body = []
            for w, r in rows.items():
                diff = "" if w == "uniform" or r["minus_uniform_mean"] is None else \
                    _signed(r)
                above = "" if w == "uniform" else f"{r['seeds_above_uniform']}/{len(seeds)}"
                cells = " | ".join(C.pct(r["per_seed"][str(s)]) for s in seeds)
                body.append(f"| {w} | {cells} | {100 * r['mean']:.1f} ± {100 * r['sd']:.1f} | {diff} | {above} |")
            parts.append(f"### {task}: {kind}\n\n" + "\n".join([head, sep, *body]))
    return "\n\n".join(parts)


def run(scale: str = "full", seeds: Sequence[int] = (0, 1, 2), only: Sequence[str] = ("text", "digits")) -> dict[str, Any]:
    total = time.perf_counter()
    payload = C.new_payload("seeds", scale, seeds[0])
    payload["seeds"] = list(seeds)
    per_seed: dict[int, dict[str, Any]] = {}
    payload["sources"] = {}
    for s in seeds:
        per_seed[s], payload["sources"][str(s)] = seed_payload(scale, s, only)
        print(f"seed {s}: {payload['sources'][str(s)]}", flush=True)
    payload["summary"] = summarise(per_seed, only)
    print(format_summary(payload["summary"], seeds), flush=True)
    payload = C.finish(payload, total)
    write_markdown(payload)
    return payload


def write_markdown(payload: dict[str, Any]) -> Path:
    """``results/SEEDS.md``: the header (date, machine, command, sources) and :func:`markdown_section`."""
    from kgkd.utils.io import atomic_write_text

    m = payload["machine"]
    head = [
        "# kgkd benchmark results: seed spread", "",
        f"- started: {payload['started']}; {payload['seconds']:.0f} s",
        f"- machine: {m['cpu']}, {m['cores']} usable cores, torch threads {m['torch_threads']}, GPU: {m['gpu']}, torch {m['torch']}",
        f"- command: `{payload['command']}` (scale `{payload['scale']}`)",
        *[f"- seed {s}: {src}" for s, src in payload["sources"].items()], "",
    ]  # fmt: skip
    path = C.RESULTS_DIR / "SEEDS.md"
    atomic_write_text(path, "\n".join(head) + "\n" + markdown_section(payload) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = C.benchmark_parser(__doc__, TQ.TASKS, None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to run (default 0 1 2)")
    args = C.parse_and_setup(parser, argv)
    if len(set(args.seeds)) != len(args.seeds):
        raise SystemExit(f"--seeds has duplicates: {args.seeds}")
    return run(args.scale, args.seeds, args.only or list(TQ.TASKS))


if __name__ == "__main__":
    main()
