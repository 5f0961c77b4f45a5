"""Worker of tests/test_ddp.py, launched with ``python -m torch.distributed.run --nproc_per_node=2``.

Each rank trains the tiny problem with batch size ``--batch`` (global batch =
2 × batch) on CPU/gloo; rank 0 writes the final student + loss tensors and the
epoch metrics to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _tiny_problem import PointDataset, TinyStudent, label_maps, make_loss, make_teachers
from safetensors.torch import save_file

from kgkd.distill.config import EngineConfig
from kgkd.distill.distributed import cleanup
from kgkd.distill.engine import DistillationEngine
from kgkd.distill.weighting import UniformWeighting


def run(batch: int, out: Path | None) -> DistillationEngine:
    """Train the tiny problem (no dropout/augmentation: the math must match across layouts)."""
    torch.manual_seed(0)
    teachers = make_teachers()
    student = TinyStudent()
    cfg = EngineConfig(epochs=2, batch_size=batch, lr=0.05, show_progress=False, device="cpu", seed=3)
    engine = DistillationEngine(student, teachers, make_loss(), UniformWeighting(2), cfg, label_maps(teachers))
    history = engine.fit(PointDataset(n=48), val_dataset=PointDataset(n=21, seed=5))
    if out is not None and engine.dist.is_main:
        tensors = {f"student/{k}": v for k, v in student.state_dict().items()}
        tensors.update({f"loss/{k}": v for k, v in engine.loss.state_dict().items()})
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / "ddp.safetensors"))
        (out / "ddp.json").write_text(json.dumps({"world_size": engine.dist.world_size, "epochs": history.epochs}))
    return engine


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    engine = run(args.batch, Path(args.out))
    cleanup(engine.dist)
