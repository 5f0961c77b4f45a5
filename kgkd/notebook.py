"""Small helpers that keep the example notebooks short (``notebooks/*.ipynb``).

The notebooks run at two scales: the shipped ``*_quick`` configs (a few minutes on a
laptop CPU) and, when the environment variable ``KGKD_NOTEBOOK_QUICK=1`` is set (what
the test suite does), each config's tiny ``smoke:`` block. Everything they write goes
below :func:`output_root` — by default ``runs/`` under the notebook's working folder.

>>> import os
>>> os.environ["KGKD_NOTEBOOK_QUICK"] = "1"
>>> quick_mode()
True
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

__all__ = [
    "QUICK_ENV",
    "TeacherProbabilities",
    "output_root",
    "quick_mode",
    "strip_outputs",
    "teacher_probabilities",
    "without_domain",
]

#: Environment variable that switches the notebooks to smoke scale.
QUICK_ENV = "KGKD_NOTEBOOK_QUICK"


def quick_mode() -> bool:
    """True when ``KGKD_NOTEBOOK_QUICK=1``: run the configs' ``smoke:`` scale (seconds, for tests)."""
    return os.environ.get(QUICK_ENV, "0").strip() == "1"


def output_root(name: str) -> Path:
    """Folder for one notebook's runs: ``$KGKD_NOTEBOOK_OUT/<name>`` or ``runs/<name>`` (created)."""
    root = Path(os.environ.get("KGKD_NOTEBOOK_OUT", "runs")) / name
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass
class TeacherProbabilities:
    """Teachers' probabilities (in the student's labels) and labels of one split, per domain.

    ``probs[domain][teacher]`` is a [N, C] tensor, ``labels[domain]`` a [N] tensor; these are
    exactly what :func:`kgkd.signals.fit_signals` consumes. ``workspace`` is the recipe
    pipeline's :class:`~kgkd.recipes.pipeline.Workspace` (teachers, datasets, caches).
    """

    kg: Any
    domains: list[str]
    teachers: list[str]
    probs: dict[str, dict[str, Tensor]]
    labels: dict[str, Tensor]
    workspace: Any


def teacher_probabilities(
    cfg: Any, split: str = "val", show_progress: bool = False
) -> TeacherProbabilities:
    """Run the recipe pipeline's first stages (graph, data, teachers, cached outputs) for ``cfg``.

    Teachers are loaded from ``KGKD_CACHE_DIR`` (trained first if missing and the config
    allows it) and run once per split; their outputs are cached on disk, so a later
    ``run_config(cfg)`` on the same data reuses them.
    """
    from kgkd.recipes.pipeline import (
        Workspace,
        cache_outputs,
        load_data,
        load_graph,
        make_collators,
        mapped_probs,
        prepare_teachers,
        split_by_domain,
        student_label_set,
    )

    ws = Workspace(cfg=cfg, out=cfg.output_dir(), show_progress=show_progress)
    ws.kg = load_graph(cfg)
    ws.domains = [*cfg.data.source_domains, *cfg.data.target_domains]
    ws.held_out = list(cfg.data.target_domains)
    ws.label_set = student_label_set(ws.kg, cfg, ws.domains)
    ws.student_labels = tuple(ws.kg.label_set(ws.label_set).labels)
    load_data(ws)
    make_collators(ws)
    prepare_teachers(ws)
    cache_outputs(ws)
    view = ws.views[split]
    names = [t.name for t in ws.teachers]
    probs = mapped_probs(ws.caches[split], ws.label_maps, len(view))
    by_domain, labels = split_by_domain(view, probs, ws.domains, names)
    return TeacherProbabilities(ws.kg, list(ws.domains), names, by_domain, labels, ws)


def without_domain(kg: Any, name: str) -> Any:
    """A copy of ``kg`` with domain ``name`` and every statement about or pointing at it removed.

    Weighted links (``:a kgkd:similarTo [ kgkd:target :name ; kgkd:weight w ]``) that
    point at the domain are removed together with their blank node, and so are teachers
    trained on that domain only (their ``trainedOn`` would point at nothing).
    """
    from rdflib import BNode, Graph, URIRef

    from kgkd.graph import KnowledgeGraph
    from kgkd.graph.vocab import KGKD

    iri = URIRef(kg.domain(name).iri)
    source = kg.graph
    trained_on = KGKD.trainedOn
    doomed = {iri}
    for node, _, _ in source.triples((None, None, iri)):
        if isinstance(node, BNode):
            doomed.add(node)
    for teacher in set(source.subjects(trained_on, iri)):
        if set(source.objects(teacher, trained_on)) <= doomed:
            doomed.add(teacher)  # a teacher of that domain only would point at nothing
    copy = Graph()
    for prefix, namespace in source.namespaces():
        copy.bind(prefix, namespace, override=True)
    for s, p, o in source:
        if s in doomed or o in doomed:
            continue
        copy.add((s, p, o))
    return KnowledgeGraph(copy, f"{kg.source} without '{name}'")


def strip_outputs(path: str | os.PathLike[str]) -> bool:
    """Remove outputs and execution counts from the notebook at ``path``; True if it changed.

    Notebooks are committed without outputs (``tests/recipes/test_notebooks.py`` checks it);
    ``python -m kgkd.notebook notebooks/*.ipynb`` cleans them after a run.
    """
    import nbformat

    book = nbformat.read(path, as_version=4)
    changed = False
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            changed = True
        cell.outputs = []
        cell.execution_count = None
    if changed:
        from kgkd.utils.io import atomic_write_text

        text = nbformat.writes(book)
        atomic_write_text(path, text if text.endswith("\n") else text + "\n")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kgkd.notebook NOTEBOOK...``: strip outputs in place, print what changed."""
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths:
        print("usage: python -m kgkd.notebook NOTEBOOK.ipynb [...]  (strips outputs in place)")
        return 2
    for path in paths:
        print(f"{'stripped' if strip_outputs(path) else 'clean   '} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
