"""``kgkd signals``: fit KG-guided teacher weights, show them, compare weightings.

* ``kgkd signals fit GRAPH --teachers T.. --domains D.. --out DIR`` — measure the
  teachers on the labelled domains' val split and fit the GNN signals.
* ``kgkd signals show GRAPH --fitted DIR --out DIR`` — weights for EVERY domain of
  GRAPH (also domains added after fitting), as heatmap PNG, JSON and Turtle.
* ``kgkd signals lodo GRAPH --teachers T.. --domains D..`` — leave-one-domain-out table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kgkd.utils.logging import get_logger

log = get_logger(__name__)


#: File in a fitted-signals folder holding the default ``kg`` weighting's choice.
KG_CHOICE = "kg_choice.json"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("graph", type=Path, help="knowledge graph (Turtle)")
    p.add_argument("--teachers", nargs="+", required=True, help="teacher names as in the graph (teacher_<domain>)")
    p.add_argument("--domains", nargs="+", required=True, help="labelled domains to measure the teachers on")
    p.add_argument("--split", default="val", help="split used to measure teachers (default: val)")
    p.add_argument("--limit", type=int, default=300, help="samples per domain (default: 300)")
    p.add_argument("--encoder", default="sage", help="GNN encoder: sage, gat, hgt or mlp (default: sage)")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gate", action="store_true", help="also fit the per-sample gate")
    p.add_argument("--shrinkage", type=_shrinkage, default="cv",
                   help="λ of w = (1-λ)·w_graph + λ·uniform: 'cv' (inner leave-one-source-domain-out CV; "
                        "0.5 with a single source domain) or a number in [0, 1] (default: cv)")
    p.add_argument("--shrinkage-metric", choices=["nll", "accuracy"], default="nll",
                   help="what the inner CV scores λ by: the ensemble's log-loss or its accuracy (default: nll)")


def _shrinkage(text: str) -> float | str:
    """``cv`` or a float in [0, 1] (argparse type)."""
    if text == "cv":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shrinkage must be 'cv' or a number in [0, 1], got '{text}'") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"--shrinkage must be in [0, 1], got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("signals", help="fit and inspect KG-guided teacher weights",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="signals_command", metavar="ACTION", required=True)

    fit = sub.add_parser("fit", help="measure teachers on labelled domains and fit the GNN signals")
    _common(fit)
    fit.add_argument("--out", type=Path, required=True, help="folder for signals.safetensors + signals.json")
    fit.set_defaults(func=cmd_fit)

    show = sub.add_parser("show", help="weights of every domain in GRAPH: heatmap PNG, JSON, Turtle")
    show.add_argument("graph", type=Path, help="knowledge graph (may contain domains added after fitting)")
    show.add_argument("--fitted", type=Path, required=True, help="folder written by 'kgkd signals fit'")
    show.add_argument("--out", type=Path, required=True, help="output folder")
    show.set_defaults(func=cmd_show)

    lodo = sub.add_parser("lodo", help="leave-one-domain-out comparison of weighting methods")
    _common(lodo)
    lodo.add_argument("--methods", nargs="+", default=None, help="weighting methods (default: all)")
    lodo.add_argument("--out", type=Path, default=None, help="write lodo.json here")
    lodo.set_defaults(func=cmd_lodo)


def cmd_fit(args: argparse.Namespace) -> int:
    from kgkd.graph import KnowledgeGraph
    from kgkd.signals import WEIGHTINGS
    from kgkd.signals.collect import collect_domain_probs
    from kgkd.signals.fit import fit_signals
    from kgkd.utils.io import atomic_write_json

    kg = KnowledgeGraph.from_file(args.graph)
    probs, labels = collect_domain_probs(kg, args.teachers, args.domains, args.split, args.limit, args.seed)
    fitted = fit_signals(kg, probs, labels, args.domains, encoder=args.encoder, epochs=args.epochs,
                         seed=args.seed, teachers=args.teachers, gate=args.gate, shrinkage=args.shrinkage,
                         shrinkage_metric=args.shrinkage_metric)
    fitted.save(args.out)
    atomic_write_json(args.out / "weights.json", fitted.to_json())
    safe = WEIGHTINGS.get("kg")(seed=args.seed).fit(kg, probs, labels, args.domains, args.teachers)
    atomic_write_json(args.out / KG_CHOICE, safe.to_json())
    print(f"default kg weighting (all inner folds): {safe.decision['chosen']} — {safe.decision['why']}")
    for d in args.domains:
        print(f"  {d}: {safe.decision_for(d)['chosen']}")
    h = fitted.history
    print(f"fitted {args.encoder} signals on {', '.join(args.domains)}: val NLL {h['best_val_nll']:.4f} "
          f"(uniform {h['uniform_val_nll']:.4f}); shrinkage λ={fitted.shrinkage:.2f} "
          f"({h['shrinkage']['rule']}); saved to {args.out}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from kgkd.graph import KnowledgeGraph
    from kgkd.signals.export import plot_weights, weight_triples
    from kgkd.signals.fitted import FittedSignals
    from kgkd.utils.io import atomic_write_json

    kg = KnowledgeGraph.from_file(args.graph)
    fitted = FittedSignals.load(args.fitted, kg)
    domains = fitted.domains()
    payload = fitted.to_json(domains)
    if fitted.reliability is not None:
        payload["reliability"] = fitted.reliability.to_json()
    atomic_write_json(args.out / "weights.json", payload)
    png = plot_weights(args.out / "weights.png", fitted.weights(domains), domains, fitted.teachers,
                       fitted.reliability, fitted.source_domains)
    kg.add_statements(weight_triples(kg, fitted, domains))
    ttl = kg.serialize(args.out / "graph_with_weights.ttl")
    width = max(len(d) for d in domains)
    print(f"shrinkage toward uniform: λ={fitted.shrinkage:.2f} ({payload['shrinkage_rule']})")
    print(" " * width + "  " + "  ".join(f"{t:>14}" for t in fitted.teachers))
    for d, row in payload["weights"].items():
        print(f"{d:<{width}}  " + "  ".join(f"{row[t]:>14.3f}" for t in fitted.teachers))
    _show_kg_choice(kg, args.fitted, domains, width)
    print(f"wrote {png}, {args.out / 'weights.json'}, {ttl}")
    return 0


def _show_kg_choice(kg: object, fitted_dir: Path, domains: list[str], width: int) -> None:
    """Print what the default ``kg`` weighting chose and why (and its weights when domain-level)."""
    import json

    from kgkd.signals.safe import domain_weights_from_choice

    path = fitted_dir / KG_CHOICE
    if not path.is_file():
        print(f"(no {KG_CHOICE} in {fitted_dir}: refit with 'kgkd signals fit' to see the default kg weighting)")
        return
    choice = json.loads(path.read_text(encoding="utf-8"))
    print(f"default kg weighting (all inner folds): {choice['decision']['chosen']} — {choice['decision']['why']}")
    per_domain = choice.get("per_domain") or {}
    fallback = f"{choice['decision']['chosen']} (new domain: all-folds rule)"
    chosen = {d: per_domain[d]["decision"]["chosen"] if d in per_domain else fallback for d in domains}
    print("per domain (evidence: the inner folds most like that domain):")
    for d in domains:
        uncovered = (per_domain.get(d) or {}).get("no_label_coverage")
        note = f"  (no weight: {', '.join(uncovered)} cannot name its labels)" if uncovered else ""
        print(f"  {d:<{width}}  {chosen[d]}{note}")
    table = domain_weights_from_choice(kg, choice, domains)
    if table is None:
        print("  (a per-sample rule for some domain: weights depend on each sample)")
        return
    print(" " * width + "  " + "  ".join(f"{t:>14}" for t in choice["teachers"]))
    for d, row in zip(domains, table.tolist()):
        print(f"{d:<{width}}  " + "  ".join(f"{v:>14.3f}" for v in row))


def cmd_lodo(args: argparse.Namespace) -> int:
    from kgkd.graph import KnowledgeGraph
    from kgkd.signals.collect import collect_domain_probs
    from kgkd.signals.transfer import DEFAULT_METHODS, leave_one_domain_out
    from kgkd.utils.io import atomic_write_json

    kg = KnowledgeGraph.from_file(args.graph)
    probs, labels = collect_domain_probs(kg, args.teachers, args.domains, args.split, args.limit, args.seed)
    report = leave_one_domain_out(kg, probs, labels, methods=args.methods or DEFAULT_METHODS,
                                  teachers=args.teachers, encoder=args.encoder, epochs=args.epochs,
                                  seed=args.seed, gate=args.gate, shrinkage=args.shrinkage,
                                  shrinkage_metric=args.shrinkage_metric)
    print(report.table())
    if args.out is not None:
        atomic_write_json(args.out / "lodo.json", report.to_json())
    return 0
