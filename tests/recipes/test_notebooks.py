"""The example notebooks run top to bottom in quick mode, and are committed without outputs.

Each notebook is executed with nbclient in a fresh kernel of *this* interpreter (the
venv's python), with ``KGKD_NOTEBOOK_QUICK=1`` (smoke-scale configs), its working
folder a tmp dir (nothing is written into the repo) and ``KGKD_CACHE_DIR`` shared with
the recipe tests, so the sentiment teachers are trained once per session.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from kgkd.paths import repo_root

NOTEBOOK_DIR = repo_root() / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))

#: Injected first cell: the kernel must be the interpreter running the tests (the venv).
_CHECK_KERNEL = f"import sys\nassert sys.executable == {sys.executable!r}, sys.executable\n"


def test_the_three_notebooks_are_there() -> None:
    assert NOTEBOOKS == [
        "01_quickstart_domain_transfer.ipynb",
        "02_custom_graph.ipynb",
        "03_digits_cross_domain.ipynb",
    ]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_without_outputs(name: str) -> None:
    raw = json.loads((NOTEBOOK_DIR / name).read_text(encoding="utf-8"))
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    assert code, f"{name} has no code cells"
    for i, cell in enumerate(code):
        assert cell.get("outputs") == [], (
            f"{name}: code cell {i} has outputs; strip them before committing"
        )
        assert cell.get("execution_count") is None, f"{name}: code cell {i} has an execution count"
    # the parameter cell near the top switches to quick mode from the environment
    assert any("KGKD_NOTEBOOK_QUICK" in "".join(c["source"]) for c in code[:2]), name


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_quick_mode(
    name: str, tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    book.cells.insert(0, nbformat.v4.new_code_cell(_CHECK_KERNEL))
    monkeypatch.setenv("KGKD_NOTEBOOK_QUICK", "1")
    monkeypatch.delenv("KGKD_NOTEBOOK_OUT", raising=False)
    monkeypatch.chdir(tmp_path)  # the kernel inherits cwd and environment
    client = NotebookClient(
        book,
        kernel_name="python3",  # jupyter_client starts it with sys.executable
        timeout=600,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    try:
        client.execute()
    except CellExecutionError as err:  # the message holds the failing cell and its traceback
        pytest.fail(f"{name} failed in quick mode:\n{err}")
    errors = [
        out
        for cell in book.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors, errors
    # it wrote its runs under the tmp working folder, and the run folders are complete
    runs = tmp_path / "runs"
    metrics = sorted(runs.rglob("metrics.json"))
    assert metrics, f"{name} wrote no run under {runs}"
    for file in metrics:
        for sibling in (
            "per_domain.png",
            "teacher_weights.png",
            "graph_with_weights.ttl",
            "student/model.safetensors",
        ):
            assert (file.parent / sibling).is_file(), f"{file.parent / sibling} missing"
    # every figure reached the notebook as an inline PNG
    images = [
        out
        for cell in book.cells
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    ]
    assert len(images) >= 2, f"{name} displayed {len(images)} images"
    text = "".join(
        out.get("text", "")
        for cell in book.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )
    if name.startswith("03"):
        # the amalgamation section: runs with Fashion-MNIST built, prints the build command without it
        from kgkd.data import data_file

        expected = (
            "student label set: digits_clothing20"
            if data_file("fashion_mnist").is_file()
            else "kgkd data build --fashion"
        )
        assert expected in text
    # the kernel inherited KGKD_CACHE_DIR: teachers live in the session's shared cache, not in the repo
    if name.startswith(("01", "02")):
        assert (shared_cache / "teachers" / "teacher_amazon").is_dir()


def test_strip_outputs_cleans_an_executed_notebook(tmp_path: Path) -> None:
    from kgkd.notebook import main, strip_outputs

    book = nbformat.read(NOTEBOOK_DIR / NOTEBOOKS[0], as_version=4)
    cell = next(c for c in book.cells if c.cell_type == "code")
    cell.execution_count = 3
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    path = tmp_path / "executed.ipynb"
    nbformat.write(book, path)
    assert main([str(path)]) == 0
    assert not strip_outputs(path)  # already clean: nothing to do the second time
    cleaned = json.loads(path.read_text(encoding="utf-8"))
    assert all(
        c.get("outputs", []) == [] and c.get("execution_count") is None for c in cleaned["cells"]
    )
    # the committed notebooks are byte-identical to what strip_outputs would write
    for name in NOTEBOOKS:
        copy = tmp_path / name
        copy.write_bytes((NOTEBOOK_DIR / name).read_bytes())
        assert not strip_outputs(copy), name


def test_quick_mode_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from kgkd.notebook import quick_mode

    monkeypatch.setenv("KGKD_NOTEBOOK_QUICK", "1")
    assert quick_mode()
    monkeypatch.setenv("KGKD_NOTEBOOK_QUICK", "0")
    assert not quick_mode()


def test_without_domain_removes_the_node_and_the_links_to_it() -> None:
    from kgkd.errors import GraphError
    from kgkd.graph import KnowledgeGraph
    from kgkd.notebook import without_domain

    kg = KnowledgeGraph.from_file(repo_root() / "graphs" / "sentiment.ttl")
    base = without_domain(kg, "yelp").validate()
    assert "yelp" not in {d.name for d in base.domains()}
    assert "#yelp" not in base.to_string()  # no similarTo / sameSource link still points at it
    assert base.summary()["domains"] == kg.summary()["domains"] - 1
    assert "yelp" in {d.name for d in kg.domains()}  # the original is untouched
    with pytest.raises(GraphError, match="yelp"):
        without_domain(base, "yelp")
