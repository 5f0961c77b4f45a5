"""The CUDA paths of the engine: autocast (bf16 / fp16 with a gradient scaler), ``torch.compile``,
teacher caches built on the GPU, and a Hugging Face teacher under autocast.

Skipped where no CUDA device is visible (CI has none); run on a GPU machine with
``pytest tests/test_cuda.py``. Every test compares the GPU run with a reference it
can trust (the fp32 CPU run of the same seeded problem, or the eager run), so a
silent precision or device bug shows up as a number, not just as "it ran".
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tiny_problem import PointDataset, TinyStudent, label_maps, make_loss, make_teachers

from kgkd.distill.cache import TeacherCache
from kgkd.distill.config import EngineConfig
from kgkd.distill.engine import DistillationEngine
from kgkd.distill.weighting import UniformWeighting
from kgkd.labels import LabelMap

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def tiny_engine(device: str, **options: Any) -> DistillationEngine:
    """The tiny point problem (KD + CE + trained feature projector), seeded, on ``device``."""
    torch.manual_seed(0)
    teachers = make_teachers()
    config = EngineConfig.from_dict(
        {"epochs": 6, "batch_size": 16, "lr": 0.02, "seed": 3, "show_progress": False,
         "device": device, **options}
    )  # fmt: skip
    return DistillationEngine(
        TinyStudent(), teachers, make_loss(), UniformWeighting(2), config, label_maps(teachers)
    )


def fit_tiny(device: str, **options: Any) -> tuple[DistillationEngine, list[float], float]:
    engine = tiny_engine(device, **options)
    history = engine.fit(PointDataset(n=128))
    scores = engine.evaluate(PointDataset(n=200, seed=9))["student"]
    return engine, history.losses(), float(scores["overall"]["accuracy"])


@pytest.fixture(scope="module")
def cpu_reference() -> tuple[list[float], float]:
    _, losses, acc = fit_tiny("cpu", amp="off")
    return losses, acc


@pytest.mark.parametrize(
    ("amp", "dtype"), [("off", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)]
)
def test_cuda_training_under_each_precision_tracks_the_fp32_cpu_run(
    amp: str, dtype: torch.dtype | None, cpu_reference: tuple[list[float], float]
) -> None:
    ref_losses, ref_acc = cpu_reference
    engine, losses, acc = fit_tiny("cuda", amp=amp)
    assert engine.device.type == "cuda" and engine.amp_dtype is dtype
    assert all(p.device.type == "cuda" for p in engine.student.parameters())
    assert all(p.device.type == "cuda" for p in engine.loss.parameters())  # the feature projector
    assert engine.scaler.is_enabled() is (amp == "fp16")  # fp16 needs loss scaling, bf16 does not
    assert all(
        p.dtype is torch.float32 for p in engine.student.parameters()
    )  # master weights stay fp32
    assert len(losses) == len(ref_losses) == 48
    assert sum(losses[-8:]) < 0.7 * sum(losses[:8])  # it learnt
    if amp == "off":  # the same math on another device: float-order differences only
        torch.testing.assert_close(
            torch.tensor(losses), torch.tensor(ref_losses), rtol=1e-3, atol=1e-4
        )
    else:  # reduced precision drifts step by step; where training ends up stays close to fp32
        assert abs(sum(losses[-8:]) - sum(ref_losses[-8:])) <= 0.1 * sum(ref_losses[-8:])
    assert abs(acc - ref_acc) <= 0.05, (acc, ref_acc)


def test_auto_precision_on_cuda_picks_bf16_where_supported() -> None:
    engine = tiny_engine("cuda")  # amp="auto"
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    assert engine.amp_dtype is expected


def test_compiled_training_on_cuda_matches_eager() -> None:
    _, eager, eager_acc = fit_tiny("cuda", amp="off")
    engine, compiled, acc = fit_tiny("cuda", amp="off", compile=True)
    assert type(engine._train_module).__name__ == "OptimizedModule"
    torch.testing.assert_close(torch.tensor(compiled), torch.tensor(eager), rtol=1e-3, atol=1e-4)
    assert abs(acc - eager_acc) <= 0.02


def test_teacher_cache_built_on_cuda_matches_the_cpu_cache(tmp_path: Path) -> None:
    data = PointDataset(n=64)
    caches = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        teacher = make_teachers()[0]
        caches[device] = TeacherCache.build(
            teacher, data, collate_fn=_collate, path=tmp_path / f"{device}.safetensors",
            features=["hidden"], dtype="fp32", dataset_fingerprint="points-64", device=device,
            show_progress=False,
        )  # fmt: skip
        assert next(teacher.parameters()).device.type == "cpu"  # moved back after the build
    index = torch.arange(64)
    cpu = caches["cpu"].lookup(index)
    gpu = caches["cuda"].lookup(index, device="cuda")
    assert gpu.logits.device.type == "cuda"
    torch.testing.assert_close(gpu.logits.cpu(), cpu.logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        gpu.features["hidden"].cpu(), cpu.features["hidden"], rtol=1e-4, atol=1e-5
    )


def test_hf_teacher_distils_into_a_student_on_cuda_under_bf16() -> None:
    """A (randomly initialised, tiny) BERT sequence classifier as a live teacher on the GPU."""
    from transformers import BertConfig

    from kgkd.distill.losses import build_loss
    from kgkd.models import HFTeacher
    from kgkd.utils.compat import auto_sequence_classifier

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=32, num_labels=2,
        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
    )  # fmt: skip
    model = auto_sequence_classifier().from_config(config).eval()
    with torch.no_grad():  # a decisive teacher: random BERT logits are otherwise nearly constant
        model.classifier.weight.mul_(50.0)
    teacher = HFTeacher(model, "bert_tiny")
    data = _TokenDataset(n=96)

    class BagOfTokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.EmbeddingBag(64, 16)
            self.head = nn.Linear(16, 2)

        def forward(self, batch: dict[str, torch.Tensor]) -> Any:
            from kgkd.models import ModelOutput

            return ModelOutput(self.head(self.emb(batch["input_ids"])), {})

    engine = DistillationEngine(
        BagOfTokens(), [teacher], build_loss("kd"), UniformWeighting(1),
        EngineConfig(epochs=8, batch_size=16, lr=0.05, seed=0, show_progress=False, device="cuda", amp="bf16"),
        [LabelMap.identity(("negative", "positive"), teacher="bert_tiny")],
    )  # fmt: skip
    assert next(teacher.parameters()).device.type == "cuda"
    history = engine.fit(data)
    losses = history.losses()
    assert sum(losses[-6:]) < 0.5 * sum(losses[:6])
    # the student now agrees with the teacher on most held-in samples
    with torch.no_grad():
        batch = {k: v.cuda() for k, v in data.batch().items()}
        agree = (
            (engine.student(batch).logits.argmax(1) == teacher(batch).logits.argmax(1))
            .float()
            .mean()
        )
    assert agree > 0.8, float(agree)


# ----------------------------------------------------------------------- helpers
def _collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    from torch.utils.data import default_collate

    return default_collate(items)


class _TokenDataset(torch.utils.data.Dataset):
    """``n`` random token sequences of length 12 (no labels: pure distillation)."""

    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(5)
        self.ids = torch.randint(1, 64, (n, 12), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(12, dtype=torch.long),
                "labels": -1, "domain": 0, "index": i}  # fmt: skip

    def batch(self) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids, "attention_mask": torch.ones_like(self.ids)}
