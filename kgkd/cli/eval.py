"""``kgkd eval STUDENT_DIR --domain yelp``: accuracy and macro-F1 of a saved student on a domain.

Any shipped domain works, including ones the student never saw. The student's
labels are matched to the domain's labels by the graph the recipe used (so a
20-class amalgamated student is scored on Fashion-MNIST's clothing labels).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def _eval(args: argparse.Namespace) -> int:
    from kgkd.cli.predict import read_meta
    from kgkd.data import MultiDomainDataset, load_domain
    from kgkd.distill.evaluation import per_domain_metrics
    from kgkd.models import load_student
    from kgkd.recipes.pipeline import StudentView, student_predictions

    folder = Path(args.student_dir)
    student = load_student(folder).eval()
    meta = read_meta(folder)
    dataset = MultiDomainDataset([load_domain(args.domain, args.split, limit=args.limit, seed=0)], split=args.split)
    remap = _label_remap(folder, meta, args.domain, len(dataset.datasets[0].label_names))
    view = StudentView(dataset, [remap])
    collate = _collate(student, meta)
    preds = student_predictions(student, view, collate)
    scores = per_domain_metrics(preds, view.labels, view.domains, [args.domain]).get(args.domain)
    if scores is None:  # a user domain without labels: nothing to score, never a fake accuracy
        print(f"{args.domain} ({args.split}, n={len(view)}): unlabelled, no accuracy; "
              f"label a few samples (kgkd data add --force) or use `kgkd predict` to see its predictions")  # fmt: skip
        return 0
    print(f"{args.domain} ({args.split}, n={int(scores['n'])}): accuracy {scores['accuracy']:.4f}  macro-F1 {scores['macro_f1']:.4f}")
    return 0


def _label_remap(folder: Path, meta: dict, domain: str, num_labels: int) -> np.ndarray:
    """Domain labels → student labels through the recipe's graph (identity without one)."""
    graph = folder / str(meta.get("graph", "graph.ttl"))
    if not graph.is_file() or not meta.get("label_set"):
        return np.arange(num_labels)
    from kgkd.graph import KnowledgeGraph
    from kgkd.recipes.pipeline import domain_label_remap

    return domain_label_remap(KnowledgeGraph.from_file(graph), domain, meta["label_set"])


def _collate(student, meta):
    """The student's own collator at the run's ``max_length`` / ``image_size`` (from ``kgkd_recipe.json``)."""
    return student.collator(max_length=int(meta.get("max_length", 64)), image_size=int(meta.get("image_size", 28)))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand."""
    parser = subparsers.add_parser("eval", help="score a saved student on one domain", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("student_dir", metavar="STUDENT_DIR", help="folder written by a recipe run (<run>/student)")
    parser.add_argument("--domain", required=True, help="a shipped domain, e.g. yelp or uci_digits")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--limit", type=int, default=None, help="score a class-stratified subset of this size")
    parser.set_defaults(func=_eval)
