"""Subprocess worker of tests/test_resume.py: train the tiny problem, optionally die or resume.

    python tests/_resume_worker.py --ckpt DIR --out DIR [--kill-at STEP | --resume]

``--kill-at`` ends the process with ``os._exit`` right after that optimiser step
(no cleanup, like SIGKILL: only checkpoints already on disk survive).
``--resume`` continues from the newest checkpoint in ``--ckpt``, then runs the same
problem uninterrupted from scratch; ``--out`` receives ``resumed.safetensors`` and
``full.safetensors`` (student + loss tensors) with their loss curves (``.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _tiny_problem import (
    PointDataset,
    TinyStudent,
    label_maps,
    make_loss,
    make_teachers,
    noisy_collate,
)
from safetensors.torch import save_file

from kgkd.distill.callbacks import Callback
from kgkd.distill.config import EngineConfig
from kgkd.distill.engine import DistillationEngine
from kgkd.distill.weighting import UniformWeighting


class KillAt(Callback):
    """Exit hard right after step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, engine, step, logs):  # type: ignore[no-untyped-def]
        if step == self.step:
            os._exit(17)


def train(ckpt: str, kill_at: int | None = None, resume: bool = False) -> tuple[dict[str, torch.Tensor], list[float]]:
    """One seeded run of the tiny problem; returns its final tensors and loss curve."""
    torch.manual_seed(0)
    teachers = make_teachers()
    student = TinyStudent(dropout=0.2)
    cfg = EngineConfig(
        epochs=3, batch_size=8, lr=0.02, show_progress=False, checkpoint_dir=ckpt, checkpoint_every=4,
        temperature=4.0, temperature_end=1.0, temperature_schedule="linear", warmup_steps=2, seed=7,
    )
    callbacks = [KillAt(kill_at)] if kill_at else []
    engine = DistillationEngine(
        student, teachers, make_loss(), UniformWeighting(2), cfg, label_maps(teachers), callbacks=callbacks
    )
    history = engine.fit(PointDataset(n=44), collate_fn=noisy_collate, resume_from="auto" if resume else None)
    tensors = {f"student/{k}": v for k, v in student.state_dict().items()}
    tensors.update({f"loss/{k}": v for k, v in engine.loss.state_dict().items()})
    return tensors, history.losses()


def _save(tensors: dict[str, torch.Tensor], losses: list[float], out: Path) -> None:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out))
    out.with_suffix(".json").write_text(json.dumps(losses))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True, help="folder for resumed.* and full.*")
    ap.add_argument("--kill-at", type=int, default=None)
    ap.add_argument("--resume", action="store_true", help="resume from --ckpt, then also run uninterrupted")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    if args.kill_at:
        train(args.ckpt, kill_at=args.kill_at)
        raise SystemExit("the run was not killed")
    _save(*train(args.ckpt, resume=args.resume), out / ("resumed.safetensors" if args.resume else "run.safetensors"))
    if args.resume:  # the uninterrupted reference, same seeds, its own checkpoint folder
        _save(*train(str(out / "full_ckpt")), out / "full.safetensors")


if __name__ == "__main__":
    main()
