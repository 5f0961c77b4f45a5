"""Ctrl-C anywhere in the CLI: one line on stderr, exit code 130, no traceback, nothing half-written.

A real ``kgkd`` process is sent SIGINT while it trains (inside its staged output folder) and
while it has written nothing yet.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kgkd.cli import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "a.safetensors"
    assert main(["-q", "teachers", "cache", "--teacher", "teacher_mnist", "--domain", "mnist", "--limit", "64",
                 "--out", str(path)]) == 0  # fmt: skip
    return path


#: ``python -m kgkd`` with SIGINT handled as in a shell-started process. A child inherits its
#: parent's ignored signals and signal mask across exec, and the test process (after hundreds
#: of tests and their libraries) is not a shell: without this the child may never see Ctrl-C.
RUN_KGKD_WITH_DEFAULT_SIGINT = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
    "runpy.run_module('kgkd', run_name='__main__', alter_sys=True)"
)


def interrupt(args: list[str], ready: callable, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    """Start ``python -m kgkd ARGS``, wait until ``ready()``, send SIGINT, collect the result."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", RUN_KGKD_WITH_DEFAULT_SIGINT, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"kgkd ended before it was interrupted (rc {proc.returncode}): {err[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("kgkd never reached the point to interrupt")
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_ctrl_c_while_training_removes_the_unfinished_output(export: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs" / "student_run"
    args = ["distill", "--cache", str(export), "--domain", "mnist", "--limit", "64", "--student", "digit",
            "--epochs", "100000", "--batch-size", "32", "--no-progress", "--out", str(out)]  # fmt: skip
    runs = tmp_path / "runs"
    result = interrupt(args, lambda: runs.is_dir() and any(p.name.endswith(".partial") for p in runs.iterdir()))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[-1] == f"kgkd: interrupted; removed the unfinished output; {out} was not touched"
    assert not runs.exists()  # neither the run folder, its stage, nor the parent this run created


def test_ctrl_c_before_anything_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``kgkd teachers train`` interrupted in its first epoch: no checkpoint yet, and it says so."""
    out = tmp_path / "teacher"
    monkeypatch.setenv("KGKD_CACHE_DIR", str(tmp_path / "cache"))
    args = ["teachers", "train", "--domain", "uci_digits", "--epochs", "10000", "--out", str(out)]
    started = time.monotonic()
    # the progress bar only appears on stderr, which is read after the end: wait for torch to start
    result = interrupt(args, lambda: time.monotonic() - started > 8)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "kgkd: interrupted; nothing was written"
    assert not out.exists()
