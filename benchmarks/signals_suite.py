#!/usr/bin/env python
"""Every teacher-weighting method on every benchmark, leave-one-domain-out, with the headroom beside it.

For each benchmark (``text11``, ``rotated_digits``, ``digits_ccexam``), seed and held-out
domain: the held-out domain's own teachers are left out, every method is fitted on the
other domains' validation split (labels of the held-out domain are never read), and the
weighted ensemble is scored on the held-out test split. ``amalgamation`` (an MNIST and a
Fashion-MNIST teacher, disjoint labels, one 20-class space) asks routing instead: methods
are fitted once on MNIST + Fashion-MNIST validation labels with both teachers and scored
on both test splits and on held-out UCI digits. Beside it the **headroom** on the
same fold: uniform, the best fixed weighting in hindsight (fitted on the held-out test
labels: an upper bound, never a method) and the per-sample oracle (any teacher right).

Students: for each main method one student per seed is distilled on the training texts /
images of *all* domains with no label at all, each domain's targets being the mixture of
that domain's own fold (so every domain is held out for its own targets); it is scored on
every domain's test split. Teachers run once; their probabilities are reused by every method.

    python benchmarks/signals_suite.py                    # all benchmarks, seeds 0 1 2
    python benchmarks/signals_suite.py --scale smoke      # plumbing check (seconds to minutes)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from typing import Any

import _common as C
import numpy as np
import torch
from _suite_problems import BENCHMARKS, BenchmarkSkipped, Problem
from torch import Tensor

from kgkd.signals import WEIGHTINGS, DomainSimilarity
from kgkd.signals.inner_cv import stacked
from kgkd.utils.seed import seed_everything

METHODS = ("uniform", "calibrated_uniform", "confidence", "domain_posterior", "graph_prior", "kg_gate", "kg_gnn",
           "kg_adapt", "kg")
STUDENT_METHODS = ("uniform", "calibrated_uniform", "confidence", "domain_posterior", "kg")
FEATURE_METHODS = frozenset({"domain_posterior", "kg_gate", "kg"})


def accuracy(mix: Tensor, y: Tensor) -> float:
    return float((mix.argmax(-1) == y).float().mean())


def best_fixed_in_hindsight(p: Tensor, y: Tensor, seed: int, draws: int = 3000) -> float:
    """Highest accuracy of any fixed weighting on the held-out labels (upper bound, never a method)."""
    t = p.size(1)
    cands = [torch.full((t,), 1.0 / t), *torch.eye(t)]
    logits = torch.zeros(t, requires_grad=True)  # NLL-optimal fixed weights
    opt = torch.optim.LBFGS([logits], max_iter=100)

    def closure() -> Tensor:
        opt.zero_grad()
        mix = (torch.softmax(logits, 0).view(1, -1, 1) * p).sum(1)
        loss = -mix.gather(1, y.view(-1, 1)).clamp_min(1e-12).log().mean()
        loss.backward()
        return loss

    opt.step(closure)
    cands.append(torch.softmax(logits.detach(), 0))
    torch.manual_seed(seed)
    rand = torch.distributions.Gamma(torch.full((draws, t), 0.5), 1.0).sample()  # Dirichlet(0.5) draws
    cands.extend(rand / rand.sum(1, keepdim=True))
    w = torch.stack(cands)  # [K, T]
    mix = torch.einsum("kt,ntc->knc", w, p)
    return float((mix.argmax(-1) == y.view(1, -1)).float().mean(1).max())


def headroom(p: Tensor, y: Tensor, seed: int) -> dict[str, float]:
    return {
        "uniform": accuracy(p.mean(1), y),
        "best_single": float(max((p[:, j].argmax(-1) == y).float().mean() for j in range(p.size(1)))),
        "best_fixed_in_hindsight": best_fixed_in_hindsight(p, y, seed),
        "per_sample_oracle": float((p.argmax(-1) == y.view(-1, 1)).any(1).float().mean()),
    }


def method_options(name: str, seed: int, sim: DomainSimilarity, memo: dict[Any, Any], smoke: bool) -> dict[str, Any]:
    if name == "kg_gnn":
        return {"seed": seed, "epochs": 10 if smoke else 100, "shrinkage": 0.0}  # raw GNN weights: its own row, not a fallback
    if name in ("graph_prior", "kg_gate", "kg_adapt", "kg"):
        return {"seed": seed, "similarity": sim, "cv_memo": memo}  # one inner CV shared by the four
    return {"seed": seed} if name in ("domain_posterior", "calibrated_uniform") else {}


def run_fold(pb: Problem, target: str, seed: int, sim: DomainSimilarity, methods: Sequence[str],
             smoke: bool = False) -> dict[str, Any]:
    """Fit every method without ``target``'s labels or teachers; score on its test split."""
    if pb.fit_domains is None:  # leave-one-domain-out
        sources = [d for d in pb.domains if d != target]
        teachers = [t for t in pb.teachers if target not in pb.teacher_domains.get(t, [])]
    else:  # amalgamation: fixed labelled domains, every teacher
        sources, teachers = list(pb.fit_domains), list(pb.teachers)
    probs = {d: {t: pb.probs["val"][d][t] for t in teachers} for d in sources}
    labels = {d: pb.labels["val"][d] for d in sources}
    feats = {d: pb.features["val"][d] for d in sources}
    p_test, y = stacked(pb.probs["test"][target], teachers), pb.labels["test"][target]
    p_train = stacked(pb.probs["train"][target], teachers)
    out: dict[str, Any] = {"target": target, "teachers": teachers, "headroom": headroom(p_test, y, seed),
                           "methods": {}, "train_mixtures": {}}
    memo: dict[Any, Any] = {}
    for name in methods:
        start = time.perf_counter()
        method = WEIGHTINGS.get(name)(**method_options(name, seed, sim, memo, smoke))
        with_feats = name in FEATURE_METHODS
        method.fit(pb.kg, probs, labels, sources, teachers, features=feats if with_feats else None)
        f_test = pb.features["test"][target] if with_feats else None
        mix = method.mixture(target, p_test, f_test)
        entry = {"accuracy": accuracy(mix, y), "seconds": round(time.perf_counter() - start, 2)}
        if hasattr(method, "describe"):
            entry["chosen"] = method.describe()
        out["methods"][name] = entry
        if name in STUDENT_METHODS:
            f_train = pb.features["train"][target] if with_feats else None
            out["train_mixtures"][name] = method.mixture(target, p_train, f_train).float()
    return out


def distil_student(pb: Problem, table: Tensor, seed: int) -> dict[str, float]:
    """Distil one student from the per-sample mixtures ``table`` (no labels); test accuracy per domain."""
    from kgkd.distill.config import EngineConfig
    from kgkd.distill.engine import DistillationEngine
    from kgkd.distill.losses import build_loss
    from kgkd.distill.table_teacher import TableTeacher
    from kgkd.distill.weighting import UniformWeighting
    from kgkd.labels import LabelMap
    from kgkd.recipes.pipeline import StudentView, student_predictions

    seed_everything(seed)
    student = pb.make_student()
    collate = student.collator(**pb.collate_options)  # the student's own input pipeline
    teacher = TableTeacher("mixture", table, pb.label_names)
    n = len(pb.domains)
    view = StudentView(pb.train_dataset, [np.arange(len(pb.label_names))] * n, hidden=range(n))
    loss = build_loss("combined", kd={"name": "multi_teacher_kd", "objective": "mixture"})
    cfg = EngineConfig(seed=seed, show_progress=False, device="cpu", **pb.engine)
    engine = DistillationEngine(student, [teacher], loss, UniformWeighting(1), cfg,
                                [LabelMap.identity(pb.label_names, "mixture")])
    engine.fit(view, None, collate_fn=collate)
    student = engine.student.cpu().eval()
    out = {}
    for d in pb.domains:
        preds = student_predictions(student, pb.test_items[d], collate)
        out[d] = float((preds == pb.labels["test"][d]).float().mean())
    return out


def summarise(values: Sequence[float]) -> dict[str, float]:
    vals = [100 * v for v in values]
    return {"mean": round(statistics.fmean(vals), 2), "sd": round(statistics.stdev(vals), 2) if len(vals) > 1 else 0.0,
            "per_seed": [round(v, 2) for v in vals]}


def run_benchmark(name: str, scale: str, seeds: Sequence[int], students: bool) -> dict[str, Any]:
    """All seeds and folds of one benchmark; means over held-out domains, then mean ± sd over seeds."""
    per_seed: list[dict[str, Any]] = []
    for seed in seeds:
        C.log.info("%s: seed %d — preparing teachers and probabilities", name, seed)
        t0 = time.perf_counter()
        pb = BENCHMARKS[name](scale, seed)
        sim = DomainSimilarity.from_kg(pb.kg)
        folds = []
        for target in pb.targets[:2] if scale == "smoke" else pb.targets:  # smoke: plumbing, two folds
            folds.append(run_fold(pb, target, seed, sim, METHODS, scale == "smoke"))
            C.log.info("%s seed %d fold %s: %s", name, seed, target,
                       {m: round(100 * v["accuracy"], 1) for m, v in folds[-1]["methods"].items()})
        record: dict[str, Any] = {"seed": seed, "seconds_prepare_and_folds": round(time.perf_counter() - t0, 1),
                                  "folds": [{k: v for k, v in f.items() if k != "train_mixtures"} for f in folds]}
        if students:
            folds_by_target = {f["target"]: f for f in folds}
            uniform_train = {d: stacked(pb.probs["train"][d], pb.teachers).mean(1) for d in pb.domains}
            record["students"] = {}
            for m in STUDENT_METHODS:
                t1 = time.perf_counter()
                table = torch.cat([folds_by_target[d]["train_mixtures"][m] if d in folds_by_target
                                   else uniform_train[d] for d in pb.domains])
                acc = distil_student(pb, table, seed)
                record["students"][m] = {"per_domain": acc, "seconds": round(time.perf_counter() - t1, 1)}
                C.log.info("%s seed %d student %s: %.1f", name, seed, m, 100 * statistics.fmean(acc.values()))
        per_seed.append(record)
        notes = pb.notes
    return summarise_benchmark(per_seed, notes)


def summarise_benchmark(per_seed: list[dict[str, Any]], notes: list[str]) -> dict[str, Any]:
    """Held-out macro means per seed, then mean ± sd over seeds, for the headroom and every method."""
    per_seed = sorted(per_seed, key=lambda r: r["seed"])

    def macro(rec: dict[str, Any], get: Any) -> float:
        return statistics.fmean(get(f) for f in rec["folds"])

    result: dict[str, Any] = {
        "headroom": {k: summarise([macro(r, lambda f, k=k: f["headroom"][k]) for r in per_seed])
                     for k in ("uniform", "best_single", "best_fixed_in_hindsight", "per_sample_oracle")},
        "methods": {},
        "folds": [f["target"] for f in per_seed[0]["folds"]],
        "seeds": [r["seed"] for r in per_seed],
        "notes": notes,
        "per_seed": per_seed,
    }
    students = all("students" in r for r in per_seed)
    for m in METHODS:
        if not all(m in f["methods"] for r in per_seed for f in r["folds"]):
            continue  # a method added after this run (merged older results): left blank, never filled in
        entry = {"ensemble": summarise([macro(r, lambda f, m=m: f["methods"][m]["accuracy"]) for r in per_seed])}
        if students and m in STUDENT_METHODS:
            entry["student"] = summarise([statistics.fmean(r["students"][m]["per_domain"][d] for d in result["folds"])
                                          for r in per_seed])
        result["methods"][m] = entry
    return result


def markdown(payload: dict[str, Any]) -> str:
    """The README table: ensemble (and student) mean ± sd per method, headroom columns."""
    lines = ["| benchmark | uniform | best fixed in hindsight | per-sample oracle | "
             + " | ".join(METHODS) + " |", "|---" * (4 + len(METHODS)) + "|"]
    for name, b in payload["benchmarks"].items():
        h = b["headroom"]
        cells = [f"{b['methods'][m]['ensemble']['mean']:.1f} ± {b['methods'][m]['ensemble']['sd']:.1f}"
                 if m in b["methods"] else "" for m in METHODS]
        lines.append(f"| {name} (ensemble) | {h['uniform']['mean']:.1f} | {h['best_fixed_in_hindsight']['mean']:.1f} | "
                     f"{h['per_sample_oracle']['mean']:.1f} | " + " | ".join(cells) + " |")
        if any("student" in b["methods"].get(m, {}) for m in METHODS):
            cells = [f"{b['methods'][m]['student']['mean']:.1f} ± {b['methods'][m]['student']['sd']:.1f}"
                     if "student" in b["methods"].get(m, {}) else "" for m in METHODS]
            lines.append(f"| {name} (student) | | | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_markdown(payload: dict[str, Any], name: str) -> None:
    """``benchmarks/results/<name>.md``: the table, the run's seeds, commands and wall-clock."""
    timings = payload.get("timings", {})
    commands = payload.get("commands", [payload.get("command", "")])
    text = (f"# signals suite ({payload['scale']}, seeds {payload['seeds']})\n\n"
            "Held-out macro accuracy %, mean ± sd over seeds; ensembles and students (one per method and seed).\n\n"
            f"{markdown(payload)}\n\nwall-clock per benchmark (s): {timings}\n\ncommands: "
            + "; ".join(f"`{c}`" for c in commands) + "\n")
    from kgkd.utils.io import atomic_write_text

    atomic_write_text(C.RESULTS_DIR / f"{name}.md", text)


def merge(names: Sequence[str], out: str) -> dict[str, Any]:
    """One results file from several (e.g. benchmarks run as parallel processes)."""
    import json

    parts = [json.loads((C.RESULTS_DIR / f"{n}.json").read_text(encoding="utf-8")) for n in names]
    payload = {**parts[0], "benchmarks": {}, "timings": {}, "commands": [p["command"] for p in parts],
               "merged_from": list(names)}
    per_seed: dict[str, list[dict[str, Any]]] = {}
    notes: dict[str, list[str]] = {}
    for part in parts:  # the same benchmark may come in several files (seeds run in parallel)
        for name, bench in part["benchmarks"].items():
            per_seed.setdefault(name, []).extend(bench["per_seed"])
            notes[name] = bench.get("notes", [])
        for name, secs in part.get("timings", {}).items():
            payload["timings"][name] = round(payload["timings"].get(name, 0.0) + secs, 1)
    payload["benchmarks"] = {n: summarise_benchmark(runs, notes[n]) for n, runs in per_seed.items()}
    payload["seeds"] = sorted({r["seed"] for runs in per_seed.values() for r in runs})
    C.write_result(out, payload)
    write_markdown(payload, out)
    print(markdown(payload))
    return payload


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=("smoke", "full"), default="full")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--no-students", action="store_true", help="ensembles only (much faster)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="signals_suite", help="results name under benchmarks/results/")
    parser.add_argument("--merge", nargs="+", metavar="NAME", default=None,
                        help="combine finished results files (benchmarks run in parallel) into --out; runs nothing")
    args = C.parse_and_setup(parser, argv)
    if args.merge:
        return merge(args.merge, args.out)
    started = time.perf_counter()
    payload = C.new_payload("signals_suite", args.scale, args.seeds[0])
    payload["seeds"] = list(args.seeds)
    payload["benchmarks"] = {}
    timings = {}
    for name in args.only:
        t0 = time.perf_counter()
        try:
            payload["benchmarks"][name] = run_benchmark(name, args.scale, args.seeds, not args.no_students)
        except BenchmarkSkipped as why:
            C.log.warning("%s skipped: %s", name, why)
            payload.setdefault("skipped", {})[name] = str(why)
            continue
        timings[name] = round(time.perf_counter() - t0, 1)
        payload["timings"] = timings
        C.write_result(args.out, payload)  # partial results survive an interrupted run
        print(markdown(payload), flush=True)
    payload["timings"] = timings
    write_markdown(payload, args.out)
    return C.finish(payload, started, args.out)


if __name__ == "__main__":
    main()
