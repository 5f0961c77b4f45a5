"""The benchmark scripts' plumbing, at smoke scale: entry points run and their numbers are consistent.

Benchmarks live in ``benchmarks/`` and their real runs are not tests; this only
guards the wiring (a refactor once dropped a helper every ``main()`` calls) and an
invariant that must hold at any scale: weights fitted to minimise the NLL directly
reach an NLL no worse than the uniform or the graph-fitted weights.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_cache: Path):
    """Import the benchmark modules with results written to ``tmp_path`` (never to benchmarks/results/)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _common

    monkeypatch.setattr(_common, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(_common, "RUNS_DIR", tmp_path / "runs")
    yield _common
    for name in ("signal_diagnostics", "transfer_quality", "run_all", "robustness", "_common"):
        sys.modules.pop(name, None)


def test_signal_diagnostics_main_runs_and_its_optimum_is_an_optimum(
    bench, tmp_path: Path, one_thread: None
) -> None:
    import signal_diagnostics

    payload = signal_diagnostics.main(["--scale", "smoke", "--only", "digits"])
    written = json.loads((tmp_path / "signal_diagnostics.json").read_text())
    assert written["tasks"].keys() == payload["tasks"].keys() == {"digits"}
    folds = written["tasks"]["digits"]["folds"]
    assert [f["source_domains"] for f in folds] == [["mnist"], ["uci_digits"]]
    for fold in folds:
        for domain, row in fold["domains"].items():
            nll = row["nll"]
            assert nll["free_nll_optimum"] <= min(nll["uniform"], nll["kg"]) + 1e-3, (domain, nll)
            # one-hot weights are grid points: the grid's best is at least the best single teacher
            assert (
                row["accuracy"]["accuracy_best_grid"]
                >= max(row["teacher_accuracy"].values()) - 1e-9
            )
            assert sum(row["weights"]["free_nll_optimum"]) == pytest.approx(1.0, abs=1e-5)
            assert (
                set(row["teacher_temperature"])
                == set(row["teachers"])
                == {"teacher_mnist", "teacher_usps", "teacher_svhn"}
            )
    section = signal_diagnostics.markdown_section(written)
    assert "### digits: sources mnist" in section and "| uci_digits | " in section
