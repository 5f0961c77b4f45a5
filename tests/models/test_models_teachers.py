"""Teacher wrappers on real weights: ccexam digit nets, ModuleTeacher hooks, HFTeacher on MiniLM."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kgkd.data import ImageCollator, load_domain
from kgkd.errors import ModelError
from kgkd.models import HFTeacher, ModelOutput, ModuleTeacher, load_ccexam_teacher
from kgkd.models.training import minilm_path


@pytest.fixture(scope="module")
def digits_batch() -> dict[str, torch.Tensor]:
    ds = load_domain("uci_digits", "test", limit=300)
    return ImageCollator(size=28)([ds[i] for i in range(len(ds))])


@pytest.mark.parametrize(("net", "min_acc"), [("mnist", 0.3), ("usps", 0.55), ("svhn", 0.55)])
def test_ccexam_teachers_beat_chance_on_real_digits(
    net: str, min_acc: float, digits_batch: dict
) -> None:
    teacher = load_ccexam_teacher(net)
    with torch.no_grad():
        out = teacher(digits_batch)
    acc = (out.logits.argmax(1) == digits_batch["labels"]).float().mean().item()
    # chance is 0.10; measured on the full test split: mnist 0.40, usps 0.70, svhn 0.72
    assert acc > min_acc
    assert out.logits.shape == (300, 10) and teacher.label_names == tuple("0123456789")
    assert out.features["conv"].dim() == 4 and out.features["pooled"].dim() == 2
    assert not any(p.requires_grad for p in teacher.parameters())


def test_ccexam_svhn_gets_three_channel_32px_input(digits_batch: dict) -> None:
    teacher = load_ccexam_teacher("svhn")
    x = teacher.inputs({"pixels": digits_batch["pixels"][:4]})
    assert x.shape == (4, 3, 32, 32)


def test_ccexam_unknown_net_names_the_choices() -> None:
    with pytest.raises(
        ModelError, match=r"no pretrained net for 'emnist'.*\['mnist', 'svhn', 'usps'\]"
    ):
        load_ccexam_teacher("emnist")


def test_fingerprint_is_stable_and_weight_sensitive() -> None:
    a, b = load_ccexam_teacher("usps"), load_ccexam_teacher("usps")
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 64
    assert a.fingerprint() != load_ccexam_teacher("mnist").fingerprint()
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    t1 = ModuleTeacher(net, "t", ["a", "b", "c"], preprocess=lambda b: b["x"])
    fp = t1.fingerprint()
    with torch.no_grad():
        net[1].weight.add_(1.0)
    assert ModuleTeacher(net, "t", ["a", "b", "c"]).fingerprint() != fp


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 5 * 5, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def test_module_teacher_hooks_named_layers() -> None:
    teacher = ModuleTeacher(
        _Tiny(), "tiny", ["a", "b", "c"], {"conv": "body", "act": "body.1", "flat": "head.0"}
    )
    out = teacher({"pixels": torch.randn(2, 1, 5, 5)})
    assert isinstance(out, ModelOutput) and out.logits.shape == (2, 3)
    assert out.features["conv"].shape == (2, 4, 5, 5) and out.features["flat"].shape == (2, 100)
    assert (out.features["act"] >= 0).all()
    assert torch.allclose(out.features["flat"], out.features["conv"].flatten(1))


def test_module_teacher_missing_layer_lists_available() -> None:
    with pytest.raises(
        ModelError, match=r"feature layer 'body\.7'.*available layers: 'body', 'body\.0', 'body\.1'"
    ):
        ModuleTeacher(_Tiny(), "tiny", ["a", "b", "c"], ["body.7"])


def test_module_teacher_wrong_label_count() -> None:
    teacher = ModuleTeacher(_Tiny(), "tiny", ["a", "b"])
    with pytest.raises(ModelError, match=r"returned \(1, 3\), expected logits \[B, 2\]"):
        teacher({"pixels": torch.randn(1, 1, 5, 5)})


def test_hf_teacher_on_minilm_learns_in_two_steps() -> None:
    from kgkd.data import TextCollator, load_minilm_tokenizer

    torch.manual_seed(0)
    teacher = HFTeacher.from_pretrained(
        minilm_path(),
        name="teacher_probe",
        num_labels=2,
        feature_names=["pooled", "cls", "hidden_3"],
    )
    assert teacher.label_names == ("LABEL_0", "LABEL_1")
    texts = ["great product, works well", "terrible, broke at once", "i love it", "awful waste of money",
             "excellent quality", "very bad experience", "highly recommended", "do not buy this"]  # fmt: skip
    labels = torch.tensor([1, 0, 1, 0, 1, 0, 1, 0])
    items = [
        {"text": t, "label": int(y), "domain": 0, "index": i}
        for i, (t, y) in enumerate(zip(texts, labels))
    ]
    batch = TextCollator(load_minilm_tokenizer(), max_length=16)(items)
    teacher.requires_grad_(False)
    teacher.model.classifier.requires_grad_(True)
    optim = torch.optim.AdamW([p for p in teacher.parameters() if p.requires_grad], lr=1e-2)

    def loss_now() -> float:
        teacher.eval()
        with torch.no_grad():
            return F.cross_entropy(teacher(batch).logits, labels).item()

    before = loss_now()
    teacher.train()
    for _ in range(2):
        loss = F.cross_entropy(teacher(batch).logits, labels)
        optim.zero_grad()
        loss.backward()
        optim.step()
    after = loss_now()
    assert after < before - 0.02
    out = teacher(batch)
    assert {k: tuple(v.shape) for k, v in out.features.items()} == {
        "pooled": (8, 384), "cls": (8, 384), "hidden_3": (8, 384)
    }  # fmt: skip


def test_hf_teacher_rejects_unknown_feature() -> None:
    from transformers import BertConfig

    from kgkd.utils.compat import auto_sequence_classifier

    model = auto_sequence_classifier().from_config(
        BertConfig(
            vocab_size=50,
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=8,
        )
    )
    with pytest.raises(ModelError, match=r"unknown feature 'hidden_9'.*0 <= i <= 1"):
        HFTeacher(model, "t", feature_names=["hidden_9"])
