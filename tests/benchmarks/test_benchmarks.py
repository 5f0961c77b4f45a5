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

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


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


def test_seed_summary_pairs_each_weighting_with_uniform_at_the_same_seed(bench) -> None:
    import seeds

    def payload(uniform: float, kg: float) -> dict:
        block = {"uniform": {"accuracy": uniform}, "kg": {"accuracy": kg}}
        return {"tasks": {"text": {"macro_mean": {"ensembles": block, "students": block}}}}

    summary = seeds.summarise(
        {0: payload(0.80, 0.78), 1: payload(0.70, 0.71), 2: payload(0.75, 0.73)}, ["text"]
    )
    kg = summary["text"]["ensembles"]["kg"]
    assert kg["per_seed"] == {"0": 0.78, "1": 0.71, "2": 0.73}
    assert kg["mean"] == pytest.approx(0.74)
    assert kg["minus_uniform_mean"] == pytest.approx(-0.01)  # (-0.02 + 0.01 - 0.02) / 3
    assert kg["minus_uniform_sd"] == pytest.approx(0.017320508, abs=1e-6)
    assert kg["seeds_above_uniform"] == 1
    assert summary["text"]["ensembles"]["uniform"]["minus_uniform_mean"] == 0.0
    table = seeds.format_summary(summary, [0, 1, 2])
    assert "-1.0 ± 1.7" in table and "1/3" in table
    section = seeds.markdown_section({"seeds": [0, 1, 2], "summary": summary})
    assert "| kg | 78.0 | 71.0 | 73.0 | 74.0 ± 3.6 | -1.0 ± 1.7 | 1/3 |" in section


# --------------------------------------------------------------------------- fresh clone, smoke scale
#: Extra arguments per entry point at smoke scale (one seed; results outside the repository).
SMOKE_ARGS: dict[str, list[str]] = {
    "engine_speed": ["--out", "{tmp}/engine_speed.json"],
    "seeds": ["--seeds", "0"],
    "signals_suite": ["--seeds", "0", "--no-students"],
    "students": ["--seeds", "0"],
}
#: Entry points not run here, and why.
NOT_RUN = {"run_all": "runs every other entry point below in turn (each is run here on its own)"}


def entry_points() -> list[str]:
    """Every ``benchmarks/*.py`` with a ``main`` (new benchmarks are covered without editing this test)."""
    return sorted(
        p.stem
        for p in BENCHMARKS.glob("*.py")
        if not p.stem.startswith("_") and "\ndef main(" in p.read_text(encoding="utf-8") and p.stem not in NOT_RUN
    )


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty teacher/cache folder, as on a fresh clone (shared by the runs below, so teachers train once)."""
    return tmp_path_factory.mktemp("fresh_clone_cache")


@pytest.mark.slow
@pytest.mark.parametrize("name", entry_points())
def test_entry_point_runs_at_smoke_scale_from_an_empty_cache(name: str, tmp_path: Path, fresh_cache: Path) -> None:
    """``python benchmarks/NAME.py --scale smoke`` from outside the repository, with no trained teachers."""
    import os
    import subprocess

    cache = tmp_path / "empty_cache" if name == "engine_speed" else fresh_cache  # engine_speed: nothing at all
    env = {**os.environ, "KGKD_CACHE_DIR": str(cache), "KGKD_BENCHMARK_RESULTS": str(tmp_path / "results"),
           "KGKD_BENCHMARK_RUNS": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1"}  # fmt: skip
    extra = [a.format(tmp=tmp_path) for a in SMOKE_ARGS.get(name, [])]
    committed = {p: p.stat().st_mtime_ns for p in (BENCHMARKS / "results").glob(f"{name}*")}  # its own results
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--scale", "smoke", *extra],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "Traceback" not in proc.stdout
    written = list((tmp_path / "results").glob("*.json")) + list(tmp_path.glob("*.json"))
    assert written, f"{name} wrote no results JSON:\n{proc.stdout[-2000:]}"
    changed = [p.name for p, t in committed.items() if p.exists() and p.stat().st_mtime_ns != t]
    assert not changed, f"{name} overwrote committed results {changed}"


def test_signals_suite_skips_amalgamation_when_fashion_mnist_cannot_be_built(
    bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Debian package reachable: the suite records why and runs the other benchmarks (no traceback)."""
    import kgkd.data.build
    from kgkd.errors import DataError

    def offline(**_: object) -> None:
        raise DataError("`apt-get download dataset-fashion-mnist` failed (exit 100): no network")

    monkeypatch.setenv("KGKD_DATA_DIR", str(tmp_path / "data"))  # no fashion_mnist built there
    monkeypatch.setattr(kgkd.data.build, "build_domains", offline)
    import _suite_problems
    import signals_suite

    with pytest.raises(_suite_problems.BenchmarkSkipped, match=r"kgkd data build --fashion.*dataset-fashion-mnist"):
        _suite_problems.amalgamation("smoke", 0)
    payload = signals_suite.main(["--scale", "smoke", "--only", "amalgamation", "--no-students", "--seeds", "0"])
    assert payload["benchmarks"] == {}
    assert "no network" in payload["skipped"]["amalgamation"]
    for name in ("signals_suite", "_suite_problems"):
        sys.modules.pop(name, None)
