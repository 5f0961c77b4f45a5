"""``BertStudent``: a vocabulary-pruned, layer-reduced BERT initialised from the MiniLM teacher.

The "parameter mapping" of the seeds: the student *is* a standard
``transformers.BertForSequenceClassification`` (so it exports to a plain Hugging Face
folder), whose embedding table holds only the word pieces the domains use and whose
encoder is a subset of MiniLM-L6's layers, copied weight for weight
(:meth:`BertStudent.from_teacher`). It reads the teachers' MiniLM ``input_ids`` through a
``token_map`` buffer (full id → row), so one collator serves teachers and student.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kgkd.errors import ModelError
from kgkd.models.base import ModelOutput
from kgkd.models.hf_teacher import masked_mean
from kgkd.models.students.base import STUDENTS
from kgkd.models.students.pruned_vocab import PrunedVocabStudent
from kgkd.models.students.text import MINILM_VOCAB_SIZE, SENTIMENT_LABELS
from kgkd.models.students.vocab import build_vocab


@dataclass(frozen=True)
class BertStudentConfig:
    """Hyper-parameters of :class:`BertStudent` (BERT names in brackets).

    Attributes:
        num_tokens: rows of the pruned embedding table [vocab_size].
        label_names: the student's labels.
        full_vocab_size / unk_token_id / pad_token_id: the teachers' tokenizer.
        dim [hidden_size], num_layers [num_hidden_layers], num_heads [num_attention_heads],
        ff_dim [intermediate_size], dropout [hidden/attention dropout].
        max_length: longest input [max_position_embeddings]; longer inputs are truncated.
        teacher_layers: which teacher layers the encoder layers were copied from (record only).
    """

    num_tokens: int
    label_names: tuple[str, ...] = SENTIMENT_LABELS
    full_vocab_size: int = MINILM_VOCAB_SIZE
    unk_token_id: int = 100
    pad_token_id: int = 0
    dim: int = 384
    num_layers: int = 1
    num_heads: int = 12
    ff_dim: int = 1536
    dropout: float = 0.1
    max_length: int = 128
    teacher_layers: tuple[int, ...] = ()


def bert_config(cfg: BertStudentConfig, pad_row: int) -> Any:
    """The ``transformers.BertConfig`` of the student's inner model (eager attention: exportable)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=cfg.num_tokens,
        hidden_size=cfg.dim,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.ff_dim,
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
        max_position_embeddings=cfg.max_length,
        pad_token_id=pad_row,
        num_labels=len(cfg.label_names),
        id2label=dict(enumerate(cfg.label_names)),
        label2id={n: i for i, n in enumerate(cfg.label_names)},
        layer_norm_eps=1e-12,
        attn_implementation="eager",
    )


@STUDENTS.register("bert")
class BertStudent(PrunedVocabStudent):
    """A ``BertForSequenceClassification`` over a pruned vocabulary (CLS pooler → classifier).

    Features: ``"pooled"`` (masked mean of the last hidden state, like the teachers'),
    ``"cls"`` (first token's last hidden state), both ``[B, dim]``.
    """

    architecture = "bert"
    builder = "from_teacher"
    config_class = BertStudentConfig

    def __init__(
        self, config: BertStudentConfig, kept_token_ids: Sequence[int] | Tensor | None = None
    ) -> None:
        super().__init__(config)
        from kgkd.utils.compat import hide_broken_torchvision

        cfg = self.config
        if cfg.dim % cfg.num_heads:
            raise ModelError(f"BertStudent: dim={cfg.dim} must be divisible by num_heads={cfg.num_heads}")
        self.init_vocab_buffers(kept_token_ids)
        hide_broken_torchvision()
        from transformers import BertForSequenceClassification

        self.bert = BertForSequenceClassification(bert_config(cfg, self.pad_row))

    @property
    def pad_row(self) -> int:
        """Row of ``[PAD]`` in the pruned table (ids are sorted, so it is its rank)."""
        return int((self.kept_token_ids < self.config.pad_token_id).sum()) if self.kept_token_ids.any() else 0

    @classmethod
    def from_teacher(
        cls,
        texts: Iterable[str],
        tokenizer: Any,
        num_layers: int = 1,
        teacher_layers: Sequence[int] | None = None,
        label_names: Sequence[str] = SENTIMENT_LABELS,
        min_count: int = 1,
        max_tokens: int | None = None,
        max_length: int = 128,
        teacher_path: str | os.PathLike[str] | None = None,
        dropout: float = 0.1,
    ) -> BertStudent:
        """A student whose vocabulary is the pieces of ``texts``, initialised from a BERT teacher.

        Args:
            texts: the domains' texts (every piece they use keeps its embedding row).
            tokenizer: the teacher's tokenizer (``kgkd.data.load_minilm_tokenizer()``).
            num_layers: encoder depth of the student.
            teacher_layers: teacher layer copied into each student layer (default the first
                ``num_layers``).
            min_count / max_tokens: vocabulary pruning (see :func:`build_vocab`).
            teacher_path: a local BERT folder (``config.json`` + ``model.safetensors``);
                default the packaged MiniLM-L6 (``kgkd.models.training.minilm_path()``).
        """
        from kgkd.models.training import minilm_path

        folder = Path(teacher_path) if teacher_path is not None else minilm_path()
        teacher_cfg, state = read_bert(folder)
        layers = tuple(range(num_layers)) if teacher_layers is None else tuple(int(i) for i in teacher_layers)
        depth = int(teacher_cfg["num_hidden_layers"])
        if len(layers) != num_layers or any(not 0 <= i < depth for i in layers):
            raise ModelError(
                f"teacher_layers={list(layers)} must name {num_layers} layer(s) of the teacher's {depth} "
                f"(0..{depth - 1}) in {folder}"
            )
        if max_length > int(teacher_cfg["max_position_embeddings"]):
            raise ModelError(
                f"max_length={max_length} exceeds the teacher's {teacher_cfg['max_position_embeddings']} positions"
            )
        kept = build_vocab(texts, tokenizer, min_count, max_tokens)
        config = BertStudentConfig(
            num_tokens=len(kept),
            label_names=tuple(label_names),
            full_vocab_size=len(tokenizer),
            unk_token_id=int(tokenizer.unk_token_id),
            pad_token_id=int(tokenizer.pad_token_id),
            dim=int(teacher_cfg["hidden_size"]),
            num_layers=num_layers,
            num_heads=int(teacher_cfg["num_attention_heads"]),
            ff_dim=int(teacher_cfg["intermediate_size"]),
            dropout=dropout,
            max_length=max_length,
            teacher_layers=layers,
        )
        student = cls(config, kept)
        student.load_teacher_weights(state, layers)
        return student

    @torch.no_grad()
    def load_teacher_weights(self, teacher_state: dict[str, Tensor], layers: Sequence[int]) -> None:
        """Parameter mapping: kept embedding rows, positions, the chosen layers and the pooler."""
        prefix = "bert." if any(k.startswith("bert.") for k in teacher_state) else ""
        mine = self.bert.bert.state_dict()
        mapped: dict[str, Tensor] = {}
        for key in mine:
            source = key
            if key.startswith("encoder.layer."):
                j, rest = key[len("encoder.layer."):].split(".", 1)
                source = f"encoder.layer.{layers[int(j)]}.{rest}"
            value = teacher_state.get(prefix + source)
            if value is None:
                if key.endswith(("position_ids", "token_type_ids")):
                    continue
                raise ModelError(f"teacher weights lack '{prefix + source}' (needed for student '{key}')")
            if key == "embeddings.word_embeddings.weight":
                value = value[self.kept_token_ids]
            elif key == "embeddings.position_embeddings.weight":
                value = value[: self.config.max_length]
            mapped[key] = value
        self.bert.bert.load_state_dict(mapped, strict=False)

    @property
    def feature_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"pooled": (self.config.dim,), "cls": (self.config.dim,)}

    def forward_rows(self, rows: Tensor, mask: Tensor) -> ModelOutput:
        """Forward on ids already in the pruned vocabulary (what the exported HF model sees)."""
        out = self.bert.bert(input_ids=rows, attention_mask=mask)
        hidden = out.last_hidden_state
        logits = self.bert.classifier(self.bert.dropout(out.pooler_output))
        return ModelOutput(logits, {"pooled": masked_mean(hidden, mask), "cls": hidden[:, 0]})


def read_bert(folder: Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(config.json dict, state dict)`` of a local BERT folder, with clear errors."""
    import json

    from kgkd.models.checkpoint import load_weights

    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise ModelError(f"teacher folder {folder} has no config.json; give a local BERT model folder")
    config = json.loads(cfg_file.read_text(encoding="utf-8"))
    if config.get("model_type") != "bert":
        raise ModelError(f"{cfg_file}: model_type {config.get('model_type')!r} is not 'bert'; "
                         "teacher initialisation maps BERT-style weights only")  # fmt: skip
    return config, load_weights(folder / "model.safetensors")
