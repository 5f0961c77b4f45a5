"""Held-out-domain quality of every teacher weighting: ensembles and distilled students.

For each task the shipped recipe runs once up to its fitted signals (teachers trained
or loaded, outputs cached, KG signals fitted on the source domains' validation split);
then one student is distilled per weighting (same seed, same data, same engine
settings) and every student and ensemble is evaluated on every domain's test split.

* ``text``: graph ``sentiment``; teachers amazon/imdb/tweets/nyt (MiniLM fine-tuned on
  their domains); held out: yelp, movie_reviews, product_reviews (labels never used
  for training or fitting).
* ``digits``: graph ``digits``; ccexam teachers mnist/usps/svhn; leave-one-domain-out
  over uci_digits and mnist (fit on the other one, test on the held-out one).

Ensembles: uniform, confidence, best_single, kg (KG-GNN), no_graph (ablation) and
oracle (the teacher best on the target's own validation labels: an upper bound, never
a method; scored on the test split like every other entry).
Students: one per weighting except oracle (no oracle student: it would need the
target's labels at training time), plus ``label_only`` (same architecture,
source labels only, no teachers). Writes ``benchmarks/results/transfer_quality.json``.

    python benchmarks/transfer_quality.py --scale full --seed 0
    python benchmarks/transfer_quality.py --scale smoke --only digits
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import _common as C
import numpy as np

#: Task → shipped config and leave-one-domain-out folds (source domains, held-out domains).
TASKS: dict[str, dict[str, Any]] = {
    "text": {
        "config": "sentiment_transfer",
        "folds": [(["amazon", "imdb", "tweets", "nyt_editorials"], ["yelp", "movie_reviews", "product_reviews"])],
    },
    "digits": {
        "config": "digits_transfer",
        "folds": [(["mnist"], ["uci_digits"]), (["uci_digits"], ["mnist"])],
    },
}

#: Benchmark-only settings per scale (on top of the shipped config at that scale).
#: ``full`` is sized for ~25 minutes on 2 shared CPU cores (one torch thread): the
#: shipped teachers (full ``sentiment_transfer`` training settings) but smaller data
#: budgets and students than the shipped recipes, because this benchmark distils
#: 6 students per fold (5 weightings + label-only) instead of one.
SCALE_OVERRIDES: dict[str, dict[str, list[str]]] = {
    "smoke": {"text": [], "digits": []},
    "quick": {"text": [], "digits": []},
    "full": {
        "text": ["data.train_limit=400", "data.val_limit=150", "data.test_limit=300",
                 "distill.engine.epochs=3"],
        "digits": ["data.train_limit=2000", "data.val_limit=300", "data.test_limit=500"],
    },
}


def fold_overrides(source: Sequence[str], target: Sequence[str]) -> list[str]:
    baselines = [w for w in C.ENSEMBLE_WEIGHTINGS if w != "kg"]
    return [
        f"data.source_domains=[{','.join(source)}]",
        f"data.target_domains=[{','.join(target)}]",
        f"signals.baselines=[{','.join(baselines)}]",
    ]


def _scores(block: dict[str, Any]) -> dict[str, float]:
    return {"accuracy": round(float(block["accuracy"]), 4), "macro_f1": round(float(block["macro_f1"]), 4)}


def run_fold(task: str, source: list[str], target: list[str], scale: str, seed: int, extra: Sequence[str]) -> dict[str, Any]:
    """One recipe workspace; one student per weighting; per-domain metrics for all of them."""
    spec = TASKS[task]
    cfg = C.recipe_config(spec["config"], scale, seed, [*SCALE_OVERRIDES[scale][task], *fold_overrides(source, target), *extra])
    start = time.perf_counter()
    ws, timings = C.prepare(cfg)
    names = [*C.STUDENT_WEIGHTINGS, C.LABEL_ONLY]
    students: dict[str, Any] = {}
    domains: dict[str, Any] = {}
    distil_seconds: dict[str, float] = {}
    for name in names:
        C.log.info("[%s %s→%s] distilling the student under '%s'", task, "+".join(source), "+".join(target), name)
        student, secs = C.distil_student(ws, name)
        distil_seconds[name] = secs
        students[name] = student
        ev = C.evaluate_student(ws, student)
        for d, entry in ev["domains"].items():
            row = domains.setdefault(d, {
                "role": entry["role"], "n": entry["n"],
                "ensembles": {w: _scores(m) for w, m in entry["ensembles"].items()},
                "teachers": {t: _scores(m) for t, m in entry["teachers"].items()},
                "students": {},
            })  # fmt: skip
            row["students"][name] = _scores(entry["student"])
    teacher_names = [t.name for t in ws.teachers]
    weights = {"kg": _weight_table(ws.weight_table, ws.domains, teacher_names)}
    try:
        from kgkd.recipes.pipeline import method

        fitted = method(ws, "no_graph").fitted
        weights["no_graph"] = _weight_table(fitted.weights(ws.domains).detach().float(), ws.domains, teacher_names)
    except Exception as exc:  # noqa: BLE001 - the ablation's table is a nice-to-have for the explanation only
        C.log.warning("no_graph weight table unavailable: %s", exc)
    reliability = _source_reliability(ws, teacher_names)
    timings["distil_per_student"] = distil_seconds
    timings["fold_total"] = round(time.perf_counter() - start, 2)
    folder = C.save_students(f"{task}__{'+'.join(target)}", students, C.student_meta(task, cfg, scale))
    return {
        "source_domains": source, "target_domains": target, "seed": seed, "domains": domains,
        "weights": weights, "source_val_accuracy": reliability, "timings": timings,
        "students_dir": C.shown(folder),
        "student_config": dict(cfg.student.params), "engine": cfg.distill.engine.to_dict(),
        "sizes": {"train": len(ws.data["train"]), "val": len(ws.data["val"]), "test": len(ws.data["test"])},
    }  # fmt: skip


def _weight_table(table: Any, domains: Sequence[str], teachers: Sequence[str]) -> dict[str, dict[str, float]]:
    return {d: {t: round(float(table[i, j]), 4) for j, t in enumerate(teachers)} for i, d in enumerate(domains)}


def _source_reliability(ws: Any, teachers: Sequence[str]) -> dict[str, dict[str, float]]:
    """Each teacher's accuracy on each source domain's validation split (what the signals were fitted on)."""
    out: dict[str, dict[str, float]] = {}
    for d in ws.cfg.data.source_domains:
        labels = ws.val_labels[d]
        out[d] = {t: round(float((ws.val_probs[d][t].argmax(-1) == labels).float().mean()), 4) for t in teachers}
    return out


def summarise(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Held-out rows across folds and their macro means (accuracy and macro-F1)."""
    held: dict[str, Any] = {}
    for fold in folds:
        for d in fold["target_domains"]:
            held[d] = fold["domains"][d]
    means: dict[str, dict[str, dict[str, float]]] = {"ensembles": {}, "students": {}}
    for kind, table in means.items():
        keys = {k for row in held.values() for k in row[kind]}
        for k in sorted(keys):
            rows = [row[kind][k] for row in held.values() if k in row[kind]]
            if len(rows) == len(held):
                table[k] = {m: round(float(np.mean([r[m] for r in rows])), 4) for m in ("accuracy", "macro_f1")}
    return {"held_out": held, "macro_mean": means}


def format_task(task: str, result: dict[str, Any]) -> str:
    """Plain-text table: held-out domains × (ensembles, students), accuracy % (macro-F1 %)."""
    held, means = result["held_out"], result["macro_mean"]
    ens = [w for w in C.ENSEMBLE_WEIGHTINGS if any(w in r["ensembles"] for r in held.values())]
    stu = [w for w in [*C.STUDENT_WEIGHTINGS, C.LABEL_ONLY] if any(w in r["students"] for r in held.values())]
    header = ["domain", "n"] + [f"E:{w}" for w in ens] + [f"S:{w}" for w in stu]
    rows = []
    for d, r in held.items():
        rows.append([d, str(r["n"])] + [_cell(r["ensembles"].get(w)) for w in ens] + [_cell(r["students"].get(w)) for w in stu])
    rows.append(["macro mean", ""] + [_cell(means["ensembles"].get(w)) for w in ens] + [_cell(means["students"].get(w)) for w in stu])
    widths = [max(len(h), *(len(x[i]) for x in rows)) for i, h in enumerate(header)]
    lines = [f"[{task}] accuracy % (macro-F1 %) on held-out domains; E = teacher ensemble, S = distilled student"]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    lines += ["  ".join(c.ljust(w) for c, w in zip(x, widths)) for x in rows]
    return "\n".join(lines)


def _cell(block: dict[str, float] | None) -> str:
    return "" if not block else f"{C.pct(block['accuracy'])} ({C.pct(block['macro_f1'])})"


def run(scale: str = "full", seed: int = 0, only: Sequence[str] = ("text", "digits"), extra: Sequence[str] = (),
        result_name: str = "transfer_quality") -> dict[str, Any]:
    """Run the benchmark; write ``results/<result_name>.json`` and return the payload."""
    total = time.perf_counter()
    payload = C.new_payload("transfer_quality", scale, seed)
    print(f"transfer_quality: scale={scale} seed={seed} tasks={','.join(only)}", flush=True)
    for task in only:
        t0 = time.perf_counter()
        folds = [run_fold(task, list(s), list(t), scale, seed, extra) for s, t in TASKS[task]["folds"]]
        payload["tasks"][task] = {"folds": folds, **summarise(folds), "seconds": round(time.perf_counter() - t0, 1)}
        print(format_task(task, payload["tasks"][task]), flush=True)
        print(f"[{task}] seed={seed}, {payload['tasks'][task]['seconds']:.0f}s", flush=True)
    return C.finish(payload, total, result_name)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = C.benchmark_parser(__doc__, TASKS, "seed of data subsets, signals and every student (default 0)",
                                "extra recipe override for every task, e.g. distill.engine.epochs=3")
    args = C.parse_and_setup(parser, argv)
    return run(args.scale, args.seed, args.only or list(TASKS), args.overrides)


if __name__ == "__main__":
    main()
