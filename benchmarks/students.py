"""The student ladder: held-out accuracy vs size vs CPU speed, for every rung of ``STUDENT_PRESETS``.

For each task the shipped recipe runs once up to its cached teacher outputs and fitted
signals (:func:`_common.prepare`); then every rung is distilled under each weighting
(default ``uniform``) and trained on labels only (same preset, ``ce`` loss), at several
student seeds, with the recipe's engine settings (the rung's own learning rate where the
preset sets one). Scores are held-out macro accuracy: the mean over held-out domains of
test accuracy (digits: averaged over both leave-one-domain-out folds).

* ``text``: graph ``sentiment``; teachers amazon/imdb/tweets/nyt; held out yelp,
  movie_reviews, product_reviews; rungs text-tiny / text-small / text-base.
* ``digits``: graph ``digits``; ccexam mnist/usps/svhn; folds mnist→uci_digits and
  uci_digits→mnist; rungs digit / digit-fast.

Speed: CPU items/s at batch 1 and 32 (one torch thread, real test inputs) of the student and
of the teacher ensemble (every teacher run in turn), as ``kgkd.distill.evaluation.profile``.
Writes ``benchmarks/results/students.json`` and ``students.png`` (accuracy vs parameters; ``--out NAME``
writes ``NAME.json`` / ``NAME.png`` instead, ``--presets a,b`` runs only those rungs).

``--weightings uniform,kg`` adds students under any method in ``kgkd.signals``' WEIGHTINGS
registry (the ``kg`` column is left null until asked for).

    python benchmarks/students.py --scale full --seeds 0,1,2
    python benchmarks/students.py --scale smoke --only digits --seeds 0
    python benchmarks/students.py --scale quick --only text --presets text-static,text-tiny --out students_static
    python benchmarks/students.py --scale transfer --only text --presets text-static,text-tiny --out students_transfer

``--scale transfer`` is ``quick`` (same teachers, val and test items) with no train limit: every
domain's whole training split is the transfer set (the held-out domains' labels stay hidden).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import _common as C

from kgkd.recipes import pipeline as P
from kgkd.utils.seed import seed_everything

TASKS: dict[str, dict[str, Any]] = {
    "text": {
        "config": "sentiment_transfer",
        "folds": [(["amazon", "imdb", "tweets", "nyt_editorials"], ["yelp", "movie_reviews", "product_reviews"])],
        "rungs": ["text-tiny", "text-small", "text-base"],
    },
    "digits": {
        "config": "digits_transfer",
        "folds": [(["mnist"], ["uci_digits"]), (["uci_digits"], ["mnist"])],
        "rungs": ["digit", "digit-fast"],
    },
}

#: Budgets per scale, on top of the shipped config at that scale (``full`` fits ~20 minutes on
#: 2 shared cores with one torch thread: 3 seeds × (KD + label-only) × every rung).
SCALE_OVERRIDES: dict[str, dict[str, list[str]]] = {
    "smoke": {"text": ["data.train_limit=48", "data.val_limit=24", "data.test_limit=32"],
              "digits": ["data.train_limit=128", "data.val_limit=64", "data.test_limit=64"]},
    # quick = the _quick recipes (text: quick teachers, 400 sentences, 1 trained layer, max_length 48)
    "quick": {"text": ["data.train_limit=150", "data.val_limit=100", "data.test_limit=200", "distill.engine.epochs=3"],
              "digits": ["data.train_limit=1000", "data.val_limit=300", "data.test_limit=500", "distill.engine.epochs=5"]},
    "full": {
        "text": ["data.train_limit=150", "data.val_limit=150", "data.test_limit=300", "distill.engine.epochs=3"],
        "digits": ["data.train_limit=1000", "data.val_limit=300", "data.test_limit=500", "distill.engine.epochs=5"],
    },
    # transfer = quick (same teachers, val and test sets: limits are drawn per split, so the test
    # items are quick's) with the whole training split of every domain as the transfer set
    # (text: 15,791 texts; the held-out domains' labels stay hidden, as at every scale)
    "transfer": {"text": ["data.train_limit=null", "data.val_limit=100", "data.test_limit=200", "distill.engine.epochs=3"],
                 "digits": ["data.train_limit=null", "data.val_limit=300", "data.test_limit=500", "distill.engine.epochs=5"]},
}  # fmt: skip

#: Scales of this benchmark only, and the shipped-config scale each builds on (``_common.recipe_config``).
EXTRA_SCALES: dict[str, str] = {"transfer": "quick"}


def task_config(task: str, scale: str, source: Sequence[str], target: Sequence[str]) -> Any:
    """The recipe config of ``task``'s fold ``source → target`` at benchmark ``scale`` (student seed aside)."""
    overrides = [*SCALE_OVERRIDES[scale][task], *fold_overrides(source, target)]
    return C.recipe_config(TASKS[task]["config"], EXTRA_SCALES.get(scale, scale), 0, overrides)


def add_scales(parser: Any, extra: Sequence[str]) -> None:
    """Let ``--scale`` (from ``_common.benchmark_parser``) also take this benchmark's own scales."""
    for action in parser._actions:
        if action.dest == "scale":
            action.choices = (*action.choices, *extra)
            action.help = f"{action.help}; transfer = quick with every training text as the transfer set"


def fold_overrides(source: Sequence[str], target: Sequence[str]) -> list[str]:
    return [f"data.source_domains=[{','.join(source)}]", f"data.target_domains=[{','.join(target)}]",
            "signals.baselines=[uniform]"]  # fmt: skip


def student_weighting(ws: P.Workspace, name: str) -> Any:
    """The engine weighting ``name``, looked up in ``kgkd.signals``' WEIGHTINGS (the ``kg`` hook)."""
    from kgkd.recipes.weightings import check_method_names

    check_method_names([name], "--weightings")
    return P.make_weighting(name, ws)


def train_rung(ws: P.Workspace, preset: str, weighting: str, seed: int) -> tuple[Any, float]:
    """One student of rung ``preset``: distilled under ``weighting`` or (``label_only``) on labels alone.

    The same stages as ``pipeline.distil`` (cached teachers, the recipe's loss and engine
    settings) with the preset's student and learning rate; returns (student, seconds).
    """
    from kgkd.distill.cache import CachedTeacher
    from kgkd.distill.engine import DistillationEngine
    from kgkd.distill.losses import build_loss
    from kgkd.models.students import STUDENT_PRESETS

    cfg = ws.cfg
    rung = STUDENT_PRESETS.get(preset)
    engine_cfg = cfg.distill.engine_config().replace(seed=seed, show_progress=False)
    if rung.lr is not None:
        engine_cfg = engine_cfg.replace(lr=rung.lr)
    seed_everything(seed)
    start = time.perf_counter()
    if rung.modality == "text":
        texts = [ds.texts[i] for ds in ws.data["train"].datasets for i in range(len(ds))]
        student = rung.build(texts, ws.student_labels, max_length=cfg.data.max_length)
    else:
        student = rung.build(label_names=ws.student_labels, input_size=cfg.data.image_size)
    label_only = weighting == C.LABEL_ONLY
    loss = build_loss("ce") if label_only else build_loss(cfg.distill.loss, **cfg.distill.loss_params)
    engine = DistillationEngine(
        student, [CachedTeacher(c) for c in ws.caches["train"]], loss,
        student_weighting(ws, "uniform" if label_only else weighting), engine_cfg, ws.label_maps,
        domain_names=ws.domains,
    )  # fmt: skip
    engine.fit(ws.train_view, None, collate_fn=C.model_collator(student, cfg))
    return engine.student.cpu().eval(), round(time.perf_counter() - start, 1)


def held_out_accuracy(report: dict[str, Any], targets: Sequence[str], key: str) -> float:
    """Mean test accuracy over the held-out domains of ``report`` (``student`` or ``ensemble:<name>``)."""
    values = []
    for d in targets:
        entry = report["domains"][d]
        block = entry["student"] if key == "student" else entry["ensembles"][key.split(":", 1)[1]]
        values.append(float(block["accuracy"]))
    return sum(values) / len(values)


def speed(ws: P.Workspace, models: list[Any], rounds: int = 1, clock: str = "wall") -> dict[str, float]:
    """Params, MB and CPU items/s at batch 1 and 32 of ``models`` run in turn, on real test inputs.

    With ``rounds`` > 1 the best of that many medians is kept: on shared cores the other
    processes only ever slow a measurement down, so the fastest round is the least disturbed.
    """
    from kgkd.distill.evaluation import profile

    test = ws.views["test"]
    collate = C.model_collator(models[0], ws.cfg)  # the models share one input pipeline (the teachers' tokenizer)
    batch = collate([test[i] for i in range(min(32, len(test)))])
    runs = [profile(models, batch, repeats=10, clock=clock) for _ in range(rounds)]
    return {"params": int(runs[0]["params"]), "size_mb": round(runs[0]["size_mb"], 3),
            "items_per_s_b1": round(max(r["items_per_s_b1"] for r in runs), 1),
            "items_per_s_b32": round(max(r["throughput"] for r in runs), 1)}  # fmt: skip


def remeasure_speed(task: str, scale: str, payload_task: dict[str, Any], rounds: int) -> None:
    """Re-measure every rung's and the ensemble's CPU speed (fresh students: speed does not
    depend on the weights), alternating student and ensemble, ``rounds`` times each; updates rows."""
    from kgkd.models.students import STUDENT_PRESETS

    spec = TASKS[task]
    source, target = spec["folds"][0]
    cfg = task_config(task, scale, source, target)
    ws, _ = C.prepare(cfg)
    texts = [ds.texts[i] for ds in ws.data["train"].datasets for i in range(len(ds))] if ws.modality == "text" else None
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for rung in spec["rungs"]:
            preset = STUDENT_PRESETS.get(rung)
            student = (preset.build(texts, ws.student_labels, max_length=cfg.data.max_length) if texts is not None
                       else preset.build(label_names=ws.student_labels, input_size=cfg.data.image_size)).eval()  # fmt: skip
            for key, models in ((rung, [student]), ("_ensemble", list(ws.teachers))):
                row = speed(ws, models)
                cpu = speed(ws, models, clock="cpu")
                row.update({"items_per_cpu_s_b1": cpu["items_per_s_b1"], "items_per_cpu_s_b32": cpu["items_per_s_b32"]})
                old = best.setdefault(key, row)
                for k in ("items_per_s_b1", "items_per_s_b32", "items_per_cpu_s_b1", "items_per_cpu_s_b32"):
                    old[k] = max(old[k], row[k])
    ens = best["_ensemble"]
    for rung in spec["rungs"]:
        row = payload_task[rung]
        keys = ("items_per_s_b1", "items_per_s_b32", "items_per_cpu_s_b1", "items_per_cpu_s_b32")
        row.update({k: best[rung][k] for k in keys})
        row.update({f"ensemble_{k}": ens[k] for k in keys})
        row.update({"speedup_b32": round(row["items_per_s_b32"] / ens["items_per_s_b32"], 2),
                    "speedup_b1": round(row["items_per_s_b1"] / ens["items_per_s_b1"], 2),
                    "speedup_cpu_b32": round(row["items_per_cpu_s_b32"] / ens["items_per_cpu_s_b32"], 2),
                    "speedup_cpu_b1": round(row["items_per_cpu_s_b1"] / ens["items_per_cpu_s_b1"], 2)})  # fmt: skip
    payload_task["_speed"] = {"rounds": rounds, "method": "best of per-round medians, student and ensemble alternated; "
                              "items_per_cpu_s_* time with process CPU time (one torch thread), unaffected by other processes"}


def fold_mean(values: list[float], folds: int) -> list[float]:
    """Per seed, the mean over folds (``values`` is fold-major: all seeds of fold 0, then fold 1, ...)."""
    n = len(values) // folds
    return [statistics.fmean(values[s + k * n] for k in range(folds)) for s in range(n)]


def summary(values: list[float]) -> dict[str, Any]:
    return {"mean": round(statistics.fmean(values), 4),
            "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            "runs": [round(v, 4) for v in values]}  # fmt: skip


def run_task(task: str, scale: str, seeds: Sequence[int], weightings: Sequence[str],
             rungs: Sequence[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Every rung (or ``rungs``) × (weightings + label-only) × seeds over the task's folds; speed on the first fold."""
    spec = {**TASKS[task], "rungs": list(rungs)} if rungs else TASKS[task]
    scores: dict[str, dict[str, list[float]]] = {r: {} for r in spec["rungs"]}
    ensemble: list[float] = []
    rows: dict[str, dict[str, Any]] = {r: {} for r in spec["rungs"]}
    timings: dict[str, float] = {}
    for f, (source, target) in enumerate(spec["folds"]):
        cfg = task_config(task, scale, source, target)
        ws, stages = C.prepare(cfg)
        timings.update({f"fold{f}_{k}": round(v, 1) for k, v in stages.items()})
        if f == 0:
            ens_speed = speed(ws, list(ws.teachers))
        for rung in spec["rungs"]:
            for weighting in [*weightings, C.LABEL_ONLY]:
                for seed in seeds:
                    student, seconds = train_rung(ws, rung, weighting, seed)
                    report = C.evaluate_student(ws, student)
                    acc = held_out_accuracy(report, target, "student")
                    scores[rung].setdefault(weighting, []).append(acc)
                    timings[f"fold{f}_{rung}_{weighting}_s{seed}"] = seconds
                    C.log.info("[%s] fold %d %s %s seed %d: held-out %.4f (%.0fs)", task, f, rung, weighting, seed, acc, seconds)
                    if f == 0 and weighting == weightings[0] and seed == seeds[0]:
                        rows[rung].update(speed(ws, [student]))
        ensemble.append(held_out_accuracy(report, target, "ensemble:uniform"))  # same for every student
    out: dict[str, Any] = {}
    for rung in spec["rungs"]:
        folds = len(spec["folds"])
        row = rows[rung]
        out[rung] = {
            **row,
            "student": summary(fold_mean(scores[rung][weightings[0]], folds)),
            "label_only": summary(fold_mean(scores[rung][C.LABEL_ONLY], folds)),
            "ensemble": {"mean": round(statistics.fmean(ensemble), 4)},
            "kg": summary(fold_mean(scores[rung]["kg"], folds)) if "kg" in scores[rung] else None,
            "ensemble_params": ens_speed["params"],
            "ensemble_size_mb": ens_speed["size_mb"],
            "ensemble_items_per_s_b1": ens_speed["items_per_s_b1"],
            "ensemble_items_per_s_b32": ens_speed["items_per_s_b32"],
            "speedup_b32": round(row["items_per_s_b32"] / ens_speed["items_per_s_b32"], 2),
            "speedup_b1": round(row["items_per_s_b1"] / ens_speed["items_per_s_b1"], 2),
        }
        for extra in weightings[1:]:
            out[rung][extra] = summary(fold_mean(scores[rung][extra], folds))
    out["_timings_s"] = timings
    out["_scale"] = scale
    out["_overrides"] = SCALE_OVERRIDES[scale][task]
    return out


def plot(payload: dict[str, Any], path: Any) -> None:
    """Held-out accuracy against parameters (log scale), one panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if t in payload]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rungs = {k: v for k, v in payload[task].items() if not k.startswith("_")}
        names = list(rungs)
        x = [rungs[n]["params"] for n in names]
        for key, label, style in (("student", "distilled (uniform)", "o-"), ("label_only", "label-only", "s--")):
            y = [100 * rungs[n][key]["mean"] for n in names]
            err = [100 * rungs[n][key]["sd"] for n in names]
            ax.errorbar(x, y, yerr=err, fmt=style, capsize=3, label=label)
        ens = rungs[names[0]]
        ax.axhline(100 * ens["ensemble"]["mean"], color="gray", ls=":",
                   label=f"teacher ensemble ({ens['ensemble_params'] / 1e6:.1f} M params)")  # fmt: skip
        for n, xi, yi in zip(names, x, [100 * rungs[n]["student"]["mean"] for n in names]):
            ax.annotate(n, (xi, yi), textcoords="offset points", xytext=(4, 6), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("student parameters")
        ax.set_ylabel("held-out accuracy (%)")
        ax.set_title(task)
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = C.benchmark_parser(__doc__, TASKS, seed_help=None)
    add_scales(parser, list(EXTRA_SCALES))
    parser.add_argument("--seeds", default="0,1,2", help="student seeds, comma-separated (default 0,1,2)")
    parser.add_argument("--weightings", default="uniform",
                        help="weightings to distil under, comma-separated (WEIGHTINGS names; default uniform)")
    parser.add_argument("--presets", default="",
                        help="only these rungs (STUDENT_PRESETS names, comma-separated; default each task's ladder)")
    parser.add_argument("--out", default="students", help="result name: benchmarks/results/<OUT>.json/.png")
    parser.add_argument("--speed-only", type=int, default=0, metavar="ROUNDS",
                        help="only re-measure CPU speed in ROUNDS alternating rounds, updating students.json")
    args = C.parse_and_setup(parser, argv)
    if args.speed_only:
        import json

        path = C.RESULTS_DIR / "students.json"
        payload = json.loads(path.read_text())
        for task in args.only or list(TASKS):
            remeasure_speed(task, payload[task].get("_scale", args.scale), payload[task], args.speed_only)
            print_table(task, payload[task])
        C.write_result("students", payload)
        plot(payload, C.RESULTS_DIR / "students.png")
        return payload
    from kgkd.models.students import STUDENT_PRESETS

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    weightings = [w.strip() for w in args.weightings.split(",") if w.strip()]
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [p for p in presets if p not in STUDENT_PRESETS]
    if unknown:
        parser.error(f"--presets: unknown rung(s) {unknown}; known: {sorted(STUDENT_PRESETS.names())}")
    started = time.perf_counter()
    payload = C.new_payload("students", args.scale, seeds[0])
    payload["seeds"], payload["weightings"] = seeds, weightings
    for task in args.only or list(TASKS):
        rungs = [p for p in presets if STUDENT_PRESETS.get(p).modality == modality(task)]
        if presets and not rungs:
            parser.error(f"--presets {args.presets}: no {task} rung among them (see kgkd.models.students.STUDENT_PRESETS)")
        payload[task] = run_task(task, args.scale, seeds, weightings, rungs or None)
        print_table(task, payload[task])
    payload.pop("tasks", None)
    earlier = C.RESULTS_DIR / f"{args.out}.json"
    if args.only and earlier.is_file():  # keep the other tasks' latest results
        import json

        old = json.loads(earlier.read_text())
        for task in TASKS:
            if task not in payload and task in old:
                payload[task] = old[task]
                payload.setdefault("kept_from_earlier_run", {})[task] = old.get("started")
    C.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    plot(payload, C.RESULTS_DIR / f"{args.out}.png")
    return C.finish(payload, started, args.out)


def modality(task: str) -> str:
    """The preset modality of ``task`` (``text`` or ``image``)."""
    return "text" if task == "text" else "image"


def print_table(task: str, rows: dict[str, Any]) -> None:
    print(f"\n{task}: held-out accuracy (mean ± sd over seeds), size and CPU speed")
    print(f"{'rung':12s} {'params':>10s} {'MB':>7s} {'student':>12s} {'label-only':>12s} {'ensemble':>9s} "
          f"{'items/s b1':>10s} {'b32':>8s} {'x ens b32':>9s} {'x ens cpu b32':>13s}")  # fmt: skip
    for name, r in rows.items():
        if name.startswith("_"):
            continue
        print(f"{name:12s} {r['params']:10,d} {r['size_mb']:7.2f} "
              f"{C.pct(r['student']['mean']):>6s} ± {100 * r['student']['sd']:3.1f} "
              f"{C.pct(r['label_only']['mean']):>6s} ± {100 * r['label_only']['sd']:3.1f} "
              f"{C.pct(r['ensemble']['mean']):>9s} {r['items_per_s_b1']:10.0f} {r['items_per_s_b32']:8.0f} "
              f"{r['speedup_b32']:9.1f} {r.get('speedup_cpu_b32', float('nan')):13.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
