"""Compact students: shapes, size budgets, save/load round trips, checkpoint errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kgkd.data import ImageCollator, TextCollator, load_domain, load_minilm_tokenizer
from kgkd.errors import CheckpointError, ModelError
from kgkd.models import STUDENTS, DigitStudent, TextStudent, count_parameters, load_student
from kgkd.models.students.text import minilm_word_embeddings


@pytest.fixture(scope="module")
def text_batch_and_texts() -> tuple[dict[str, torch.Tensor], list[str]]:
    ds = load_domain("amazon", "train", limit=64)
    texts = [ds[i]["text"] for i in range(len(ds))]
    batch = TextCollator(load_minilm_tokenizer(), max_length=32)([ds[i] for i in range(8)])
    return batch, texts


def test_text_student_shapes_budget_and_vocab(text_batch_and_texts: tuple) -> None:
    batch, texts = text_batch_and_texts
    torch.manual_seed(0)
    student = TextStudent.from_texts(texts, load_minilm_tokenizer())
    out = student(batch)
    assert out.logits.shape == (8, 2) and out.features["pooled"].shape == (8, 128)
    assert student.feature_shapes == {"pooled": (128,)}
    assert count_parameters(student) < 5_000_000
    # the pruned table is far smaller than MiniLM's 30522 rows, and unseen ids map to [UNK]
    assert student.config.num_tokens < 2_000
    unk_row = int(student.token_map[100])
    unseen = next(i for i in range(1000, 30522) if i not in set(student.kept_token_ids.tolist()))
    assert int(student.token_map[unseen]) == unk_row
    masked = dict(batch, attention_mask=batch["attention_mask"].clone())
    masked["input_ids"] = batch["input_ids"].clone()
    last = int(batch["attention_mask"][0].sum()) - 1
    masked["input_ids"][0, last + 1 :] = (
        5  # garbage under the padding mask must not change the output
    )
    student.eval()
    assert torch.allclose(student(batch).logits, student(masked).logits, atol=1e-5)


def test_text_student_init_from_teacher_uses_pca_of_minilm(text_batch_and_texts: tuple) -> None:
    _, texts = text_batch_and_texts
    table = minilm_word_embeddings()
    student = TextStudent.from_texts(
        texts, load_minilm_tokenizer(), init_from_teacher=True, teacher_embeddings=table
    )
    emb = student.embed.weight.detach()
    kept = table[student.kept_token_ids]
    # the PCA projection preserves the teachers' geometry: pairwise similarities correlate strongly
    sim_t = torch.nn.functional.normalize(kept - kept.mean(0), dim=1)
    sim_s = torch.nn.functional.normalize(emb, dim=1)
    a, b = (sim_t @ sim_t.T).flatten(), (sim_s @ sim_s.T).flatten()
    corr = torch.corrcoef(torch.stack([a, b]))[0, 1]
    assert corr > 0.6
    rand = TextStudent.from_texts(texts, load_minilm_tokenizer())
    sim_r = torch.nn.functional.normalize(rand.embed.weight.detach(), dim=1)
    assert torch.corrcoef(torch.stack([a, (sim_r @ sim_r.T).flatten()]))[0, 1] < 0.3


def test_digit_student_shapes_and_budget() -> None:
    ds = load_domain("uci_digits", "val", limit=16)
    batch = ImageCollator(size=28)([ds[i] for i in range(16)])
    student = DigitStudent()
    out = student(batch)
    assert out.logits.shape == (16, 10)
    assert out.features["conv"].shape == (16, 64, 7, 7) and out.features["pooled"].shape == (
        16,
        128,
    )
    assert {k: tuple(v.shape[1:]) for k, v in out.features.items()} == student.feature_shapes
    assert 50_000 <= count_parameters(student) <= 100_000
    # other input sizes are resized to the configured 28x28
    assert student({"pixels": torch.rand(2, 1, 8, 8)}).features["conv"].shape == (2, 64, 7, 7)


@pytest.mark.parametrize("arch", ["text", "digit"])
def test_save_load_round_trip_gives_identical_outputs(
    arch: str, tmp_path: Path, text_batch_and_texts: tuple
) -> None:
    batch, texts = text_batch_and_texts
    if arch == "text":
        student = TextStudent.from_texts(
            texts, load_minilm_tokenizer(), dim=64, num_heads=2, ff_dim=64
        )
    else:
        student = DigitStudent()
        batch = {"pixels": torch.rand(4, 1, 28, 28)}
    with torch.no_grad():  # move BatchNorm statistics away from their init
        student.train()(batch)
    student.eval()
    path = student.save_pretrained(tmp_path / "student")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_student(path)
    assert type(loaded) is STUDENTS.get(arch) and loaded.config == student.config
    with torch.no_grad():
        assert torch.equal(loaded(batch).logits, student(batch).logits)
    assert not list(tmp_path.glob(".student.*"))  # no temp folders left behind


def test_load_student_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"student checkpoint folder .*nope does not exist"):
        load_student(tmp_path / "nope")


def test_load_student_truncated_weights_names_file(tmp_path: Path) -> None:
    path = DigitStudent().save_pretrained(tmp_path / "s")
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    with pytest.raises(CheckpointError, match=r"model\.safetensors is corrupt or truncated"):
        load_student(path)


def test_load_student_validates_config_keys(tmp_path: Path) -> None:
    path = DigitStudent().save_pretrained(tmp_path / "s")
    cfg_file = path / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg_file.write_text(json.dumps({**cfg, "dims": 3}))
    with pytest.raises(
        CheckpointError, match=r"config\.json: unknown key\(s\) \['dims'\]; accepted keys"
    ):
        load_student(path)
    cfg_file.write_text(json.dumps({**cfg, "dim": "wide"}))
    with pytest.raises(CheckpointError, match=r"key 'dim' must be an integer, got 'wide'"):
        load_student(path)
    cfg_file.write_text(json.dumps({**cfg, "architecture": "digits"}))
    with pytest.raises(
        CheckpointError, match=r"unknown student architecture 'digits'\. Did you mean 'digit'\?"
    ):
        load_student(path)
    cfg_file.write_text('{\n  "architecture": "digit",\n')
    with pytest.raises(CheckpointError, match=r"config\.json:3: invalid JSON"):
        load_student(path)


def test_text_student_rejects_bad_sizes() -> None:
    with pytest.raises(ModelError, match=r"dim=130 must be divisible by num_heads=4"):
        TextStudent(TextStudent.config_class(num_tokens=4, dim=130))
