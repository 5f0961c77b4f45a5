"""benchmarks/scale.py at smoke scale: every step runs (build, cached epoch, 2 ranks, kill + resume)
and the JSON has the shape issue 14 asks for."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_scale_smoke_writes_the_promised_shape(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, one_thread: None
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _common
    import scale

    monkeypatch.setattr(_common, "RESULTS_DIR", tmp_path)
    try:
        scale.main(["--scale", "smoke"])
    finally:
        for name in ("scale", "_common"):
            sys.modules.pop(name, None)
    out = json.loads((tmp_path / "scale.json").read_text())
    (size,) = out["sizes"]
    entry = out["sizes"][size]
    assert set(entry) == {"build", "distill", "disk_mb"}
    assert set(entry["build"]) == set(entry["distill"]) == {"items_per_s", "peak_rss_mb"}
    assert all(v > 0 for part in ("build", "distill") for v in entry[part].values()) and entry["disk_mb"] > 0
    assert set(out["ranks"]) == {"1", "2"} and all(r["items_per_s"] > 0 for r in out["ranks"].values())
    assert out["details"]["ranks"]["2"]["same_shards_as_1_rank"] is True
    resume = out["resume"]
    assert resume["same_result"] is True and resume["kept"] == resume["finished_before_kill"]
    assert resume["redone"] == 0
