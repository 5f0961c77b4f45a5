"""``StaticStudent``: static word-piece vectors distilled from MiniLM (the model2vec idea), a mean and a small head.

Every kept word piece gets one vector: MiniLM's output for the piece *in isolation*
(``[CLS] piece [SEP]`` through the whole encoder, the piece's position read out), reduced to
``dim`` dimensions with PCA (:func:`isolated_token_embeddings`, :meth:`StaticStudent.from_teacher`).
A text is the weighted mean of its pieces' vectors (SIF weights ``a / (a + p(piece))`` from
the transfer texts' counts damp frequent pieces; special tokens get weight 0), followed by a
one-hidden-layer MLP. No attention and no positions: the cost is a gather and a sum, so it
runs hundreds of times faster than the teachers. The vectors and the head are then trained by
KD like any student. The student reads the teachers' MiniLM ``input_ids`` through a
``token_map`` (one collator for teachers and student) and writes a pruned tokenizer for export.

Because a static vector carries meaning on its own, the vocabulary may hold pieces the
training texts never use (``fill_vocab``): they keep their distilled MiniLM vectors, so test
words outside the transfer set are not all ``[UNK]``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from kgkd.errors import ConfigError, ModelError
from kgkd.models.base import ModelOutput
from kgkd.models.students.base import STUDENTS
from kgkd.models.students.pruned_vocab import PrunedVocabStudent
from kgkd.models.students.text import MINILM_VOCAB_SIZE, SENTIMENT_LABELS, pca_embeddings
from kgkd.models.students.vocab import build_vocab

POOLINGS: tuple[str, ...] = ("mean", "sif")
_UNUSED = re.compile(r"^\[unused\d+\]$")


@dataclass(frozen=True)
class StaticStudentConfig:
    """Hyper-parameters of :class:`StaticStudent`.

    Attributes:
        num_tokens: rows of the static embedding table (kept word pieces).
        label_names: the student's labels.
        full_vocab_size / unk_token_id / pad_token_id: the teachers' tokenizer.
        dim: width of the static vectors (PCA of MiniLM's 384).
        hidden_dim: width of the MLP head's hidden layer (0: a linear head).
        dropout: dropout on the pooled vector and the hidden layer.
        pooling: ``"sif"`` (SIF-weighted mean, weights in the ``token_weight`` buffer) or ``"mean"``.
        max_length: longest input; longer inputs are truncated.
        freeze_embeddings: keep the distilled MiniLM vectors fixed and train only the head (pieces
            the training texts use then stay in the same space as those they never use).
    """

    num_tokens: int
    label_names: tuple[str, ...] = SENTIMENT_LABELS
    full_vocab_size: int = MINILM_VOCAB_SIZE
    unk_token_id: int = 100
    pad_token_id: int = 0
    dim: int = 256
    hidden_dim: int = 256
    dropout: float = 0.1
    pooling: Literal["mean", "sif"] = "sif"
    max_length: int = 128
    freeze_embeddings: bool = False


def check_config(cfg: StaticStudentConfig) -> None:
    """Reject sizes and options the student cannot be built with (names the option and the fix)."""
    if cfg.pooling not in POOLINGS:
        raise ConfigError(f"static student: pooling={cfg.pooling!r} is not one of {list(POOLINGS)}")
    if cfg.dim < 1 or cfg.hidden_dim < 0 or cfg.num_tokens < 2 or cfg.max_length < 1:
        raise ConfigError(
            f"static student: dim={cfg.dim}, hidden_dim={cfg.hidden_dim}, num_tokens={cfg.num_tokens}, "
            f"max_length={cfg.max_length}: dim and max_length must be ≥ 1, hidden_dim ≥ 0 (0 = linear head), "
            "num_tokens ≥ 2"
        )
    if not 0.0 <= cfg.dropout < 1.0:
        raise ConfigError(f"static student: dropout={cfg.dropout} must lie in [0, 1)")


@torch.inference_mode()
def isolated_token_embeddings(
    token_ids: Sequence[int] | Tensor,
    model_path: str | os.PathLike[str] | None = None,
    batch_size: int = 1024,
    cls_id: int = 101,
    sep_id: int = 102,
) -> Tensor:
    """MiniLM's output vector of each piece on its own: ``[CLS] piece [SEP]`` → last hidden state at the piece.

    Args:
        token_ids: tokenizer ids of the pieces.
        model_path: a local BERT folder; default the packaged MiniLM-L6.
        batch_size: pieces per forward pass (every input has length 3, so no padding).
        cls_id / sep_id: ids of ``[CLS]`` / ``[SEP]`` in that model's vocabulary.

    Returns:
        float32 tensor ``[len(token_ids), hidden]``.
    """
    from kgkd.models.training import minilm_path
    from kgkd.utils.compat import hide_broken_torchvision

    hide_broken_torchvision()
    from transformers import BertModel

    folder = Path(model_path) if model_path is not None else minilm_path()
    if not (folder / "config.json").is_file():
        raise ModelError(f"static student: {folder} has no config.json; give a local BERT model folder")
    model = BertModel.from_pretrained(str(folder), local_files_only=True).eval()
    ids = torch.as_tensor(list(token_ids) if not isinstance(token_ids, Tensor) else token_ids).long()
    out = []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        inputs = torch.stack([torch.full_like(chunk, cls_id), chunk, torch.full_like(chunk, sep_id)], dim=1)
        hidden = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).last_hidden_state
        out.append(hidden[:, 1].float())
    return torch.cat(out) if out else torch.zeros(0, model.config.hidden_size)


def fill_to(kept: Sequence[int], tokenizer: Any, max_tokens: int) -> list[int]:
    """``kept`` topped up to ``max_tokens`` with the tokenizer's other pieces in id order.

    BERT's WordPiece vocabulary lists pieces roughly by corpus frequency, so the lowest
    unused ids are the commonest pieces the texts did not contain; ``[unusedN]`` slots are skipped.
    """
    have = set(kept)
    extra = []
    for piece_id, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
        if len(have) + len(extra) >= max_tokens:
            break
        if piece_id not in have and not _UNUSED.match(piece):
            extra.append(piece_id)
    return sorted(have | set(extra))


def sif_weights(counts: Counter[int], kept: Tensor, specials: Iterable[int], a: float = 1e-3) -> Tensor:
    """SIF weight ``a / (a + p)`` per kept piece (p: its share of the counted pieces); specials get 0."""
    total = max(sum(c for i, c in counts.items() if i not in set(specials)), 1)
    p = torch.tensor([counts.get(int(i), 0) / total for i in kept.tolist()], dtype=torch.float32)
    weights = a / (a + p)
    special = torch.isin(kept, torch.tensor(sorted(specials), dtype=torch.long))
    return weights.masked_fill(special, 0.0)


@STUDENTS.register("static")
class StaticStudent(PrunedVocabStudent):
    """Static piece vectors → (SIF-)weighted mean → MLP head. Feature ``"pooled"`` [B, dim]."""

    architecture = "static"
    builder = "from_teacher"
    config_class = StaticStudentConfig

    def __init__(
        self, config: StaticStudentConfig, kept_token_ids: Sequence[int] | Tensor | None = None
    ) -> None:
        super().__init__(config)
        cfg = self.config
        check_config(cfg)
        self.register_buffer("token_weight", torch.ones(cfg.num_tokens))
        self.init_vocab_buffers(kept_token_ids)
        self.embed = nn.Embedding(cfg.num_tokens, cfg.dim)
        self.embed.weight.requires_grad_(not cfg.freeze_embeddings)
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.hidden_dim:
            self.head = nn.Sequential(
                nn.Linear(cfg.dim, cfg.hidden_dim), nn.GELU(), nn.Dropout(cfg.dropout),
                nn.Linear(cfg.hidden_dim, len(cfg.label_names)),
            )  # fmt: skip
        else:
            self.head = nn.Sequential(nn.Linear(cfg.dim, len(cfg.label_names)))

    @classmethod
    def from_teacher(
        cls,
        texts: Iterable[str],
        tokenizer: Any,
        label_names: Sequence[str] = SENTIMENT_LABELS,
        min_count: int = 1,
        max_tokens: int | None = None,
        fill_vocab: bool = False,
        teacher_path: str | os.PathLike[str] | None = None,
        **sizes: Any,
    ) -> StaticStudent:
        """A student over the pieces of ``texts`` whose vectors are MiniLM's isolated-piece outputs (PCA to ``dim``).

        Args:
            texts: the transfer texts (vocabulary and SIF counts).
            tokenizer: the teachers' tokenizer (``kgkd.data.load_minilm_tokenizer()``).
            min_count / max_tokens: vocabulary pruning (see :func:`build_vocab`).
            fill_vocab: top the vocabulary up to ``max_tokens`` with the tokenizer's commonest other pieces.
            teacher_path: a local BERT folder; default the packaged MiniLM-L6.
            **sizes: other :class:`StaticStudentConfig` fields (dim, hidden_dim, dropout, pooling, max_length,
                freeze_embeddings).

        Raises:
            ConfigError: unknown option, bad size, ``fill_vocab`` without ``max_tokens``, or
                ``dim`` larger than the teacher's width / the vocabulary.
        """
        unknown = sorted(set(sizes) - {"dim", "hidden_dim", "dropout", "pooling", "max_length", "freeze_embeddings"})
        if unknown:
            raise ConfigError(
                f"static student: unknown option(s) {unknown}; accepted: dim, hidden_dim, dropout, pooling, "
                "max_length, freeze_embeddings, min_count, max_tokens, fill_vocab, teacher_path"
            )
        if fill_vocab and max_tokens is None:
            raise ConfigError("static student: fill_vocab=True needs max_tokens (the size to fill up to)")
        texts = list(texts)
        kept = build_vocab(texts, tokenizer, min_count, max_tokens)
        if fill_vocab and max_tokens is not None:
            kept = fill_to(kept, tokenizer, max_tokens)
        config = StaticStudentConfig(
            num_tokens=len(kept),
            label_names=tuple(label_names),
            full_vocab_size=len(tokenizer),
            unk_token_id=int(tokenizer.unk_token_id),
            pad_token_id=int(tokenizer.pad_token_id),
            **sizes,
        )
        student = cls(config, kept)
        vectors = isolated_token_embeddings(
            student.kept_token_ids, teacher_path, cls_id=int(tokenizer.cls_token_id), sep_id=int(tokenizer.sep_token_id)
        )
        if config.dim > min(vectors.shape):
            raise ConfigError(
                f"static student: dim={config.dim} exceeds the teacher's width / vocabulary "
                f"({min(vectors.shape)}); lower dim"
            )
        counts: Counter[int] = Counter()
        for start in range(0, len(texts), 512):
            for ids in tokenizer(texts[start : start + 512], add_special_tokens=False)["input_ids"]:
                counts.update(ids)
        with torch.no_grad():
            student.embed.weight.copy_(pca_embeddings(vectors, config.dim))
            specials = [int(i) for i in tokenizer.all_special_ids]
            if config.pooling == "sif":
                student.token_weight.copy_(sif_weights(counts, student.kept_token_ids, specials))
            else:
                keep = ~torch.isin(student.kept_token_ids, torch.tensor(specials, dtype=torch.long))
                student.token_weight.copy_(keep.float())
        return student

    @property
    def feature_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"pooled": (self.config.dim,)}

    def forward_rows(self, rows: Tensor, mask: Tensor) -> ModelOutput:
        """Forward on ids already in the pruned vocabulary (what an exported model sees)."""
        weight = self.token_weight[rows] * mask.to(self.token_weight.dtype)  # [B, L]
        total = (self.embed(rows) * weight.unsqueeze(-1)).sum(dim=1)
        pooled = total / weight.sum(dim=1, keepdim=True).clamp_min(1e-6)
        logits = self.head(self.dropout(pooled))
        return ModelOutput(logits, {"pooled": pooled})
