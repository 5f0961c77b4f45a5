"""StaticStudent: MiniLM isolated-piece vectors, save/load, a KD step, the text-static budget, option errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kgkd.data import load_domain, load_minilm_tokenizer
from kgkd.errors import ConfigError
from kgkd.models.params import count_parameters
from kgkd.models.students import STUDENT_PRESETS, StaticStudent, build_preset, load_student
from kgkd.models.students import static as static_module
from kgkd.models.training import minilm_path

TOL = 1e-5


@pytest.fixture(scope="module")
def tokenizer():
    return load_minilm_tokenizer()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return list(load_domain("amazon", "train", limit=8).texts)


@pytest.fixture(scope="module")
def student(texts: list[str], tokenizer) -> StaticStudent:
    torch.manual_seed(0)
    return StaticStudent.from_teacher(texts, tokenizer, max_tokens=40, dim=16, hidden_dim=8, dropout=0.0)


def test_token_vectors_are_minilms_isolated_token_outputs(tokenizer, one_thread: None) -> None:
    """Batched ``[CLS] piece [SEP]`` vectors == MiniLM run on each word alone (one piece each)."""
    from transformers import BertModel

    words = ["good", "terrible", "movie", "the", "phone"]
    ids = tokenizer.convert_tokens_to_ids(words)
    got = static_module.isolated_token_embeddings(ids, batch_size=3)
    model = BertModel.from_pretrained(str(minilm_path()), local_files_only=True).eval()
    with torch.inference_mode():
        for row, word in zip(got, words):
            enc = tokenizer(word, return_tensors="pt")
            assert enc["input_ids"].shape[1] == 3, word  # [CLS] word [SEP]
            expected = model(**enc).last_hidden_state[0, 1]
            assert torch.allclose(row, expected, atol=TOL), (word, (row - expected).abs().max())


def test_save_load_round_trip_gives_the_same_logits(student: StaticStudent, texts: list[str], tokenizer,
                                                    tmp_path) -> None:  # fmt: skip
    batch = dict(tokenizer(texts[:4], padding=True, return_tensors="pt"))
    student.eval()
    before = student(batch)
    loaded = load_student(student.save_pretrained(tmp_path / "static"))
    assert isinstance(loaded, StaticStudent)
    after = loaded(batch)
    assert torch.allclose(before.logits, after.logits, atol=1e-6)
    assert torch.equal(loaded.token_weight, student.token_weight)
    assert after.features["pooled"].shape == (4, *student.feature_shapes["pooled"])
    specials = torch.isin(student.kept_token_ids, torch.tensor(tokenizer.all_special_ids))
    assert (student.token_weight[specials] == 0).all() and (student.token_weight[~specials] > 0).all()


def test_a_kd_step_on_real_texts_lowers_the_loss(texts: list[str], tokenizer) -> None:
    torch.manual_seed(0)
    model = StaticStudent.from_teacher(texts, tokenizer, max_tokens=40, dim=16, hidden_dim=8, dropout=0.0)
    batch = dict(tokenizer(texts, padding=True, return_tensors="pt"))
    teacher = torch.softmax(torch.randn(len(texts), 2) * 3, dim=-1)

    def kd() -> torch.Tensor:
        return F.kl_div(F.log_softmax(model(batch).logits, dim=-1), teacher, reduction="batchmean")

    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    start = kd()
    start.backward()
    optimizer.step()
    with torch.no_grad():
        assert kd() < start


def test_frozen_embeddings_stay_the_distilled_vectors(texts: list[str], tokenizer) -> None:
    model = StaticStudent.from_teacher(texts, tokenizer, max_tokens=40, dim=16, hidden_dim=8, freeze_embeddings=True)
    table = model.embed.weight.detach().clone()
    model(dict(tokenizer(texts, padding=True, return_tensors="pt"))).logits.sum().backward()
    assert model.embed.weight.grad is None and torch.equal(model.embed.weight, table)
    assert all(p.grad is not None for p in model.head.parameters())


def test_text_static_preset_respects_its_budget(monkeypatch, texts: list[str], tokenizer) -> None:
    """The budget depends on shapes only: the 20k piece vectors are faked to keep the test fast."""
    def fake(ids, *args, **kwargs):
        return torch.randn(len(ids), 384)

    monkeypatch.setattr(static_module, "isolated_token_embeddings", fake)
    preset = STUDENT_PRESETS.get("text-static")
    model = build_preset("text-static", texts)
    assert isinstance(model, StaticStudent) and model.config.num_tokens == preset.options["max_tokens"]
    assert preset.max_params is not None and count_parameters(model) <= preset.max_params
    assert model(dict(tokenizer(texts[:2], padding=True, return_tensors="pt"))).logits.shape == (2, 2)


def test_bad_options_are_clear_config_errors(texts: list[str], tokenizer) -> None:
    with pytest.raises(ConfigError, match=r"pooling='max' is not one of \['mean', 'sif'\]"):
        StaticStudent.from_teacher(texts, tokenizer, max_tokens=40, dim=16, pooling="max")
    with pytest.raises(ConfigError, match="fill_vocab=True needs max_tokens"):
        StaticStudent.from_teacher(texts, tokenizer, fill_vocab=True)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['num_layers'\]"):
        StaticStudent.from_teacher(texts, tokenizer, num_layers=2)
    with pytest.raises(ConfigError, match="dim=64 exceeds .* lower dim"):
        StaticStudent.from_teacher(texts, tokenizer, max_tokens=40, dim=64)
    with pytest.raises(ConfigError, match="hidden_dim ≥ 0"):
        StaticStudent.from_teacher(texts, tokenizer, max_tokens=40, hidden_dim=-1)
