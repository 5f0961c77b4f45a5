"""``PrunedVocabStudent``: the common base of text students that read the teachers' word-piece ids.

A text student keeps only the word pieces its domains use: ``kept_token_ids`` (row i of its
embedding table ↔ tokenizer id ``kept_token_ids[i]``) and a ``token_map`` buffer from every
tokenizer id to a row (unseen ids → the ``[UNK]`` row). This base owns that mapping, the
checks on incoming ``input_ids``, the pruned tokenizer for export and the recipe constructor;
a subclass implements :meth:`forward_rows` on rows of its own table and names the
classmethod that builds it from texts (:attr:`builder`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from kgkd.errors import ModelError
from kgkd.models.base import ModelOutput
from kgkd.models.students.base import Student, build_from_texts
from kgkd.models.students.vocab import pruned_tokenizer, token_rows

__all__ = ["PrunedVocabStudent"]


class PrunedVocabStudent(Student):
    """A text student over a pruned word-piece vocabulary (config has ``num_tokens``, ``full_vocab_size``,
    ``unk_token_id``, ``pad_token_id`` and ``max_length``)."""

    modality = "text"
    #: Name of the classmethod ``(texts, tokenizer, **params)`` that :meth:`for_data` calls.
    builder: ClassVar[str]

    def init_vocab_buffers(self, kept_token_ids: Sequence[int] | Tensor | None) -> None:
        """Register ``kept_token_ids`` / ``token_map`` (filled now, or later by ``load_state_dict``)."""
        cfg = self.config
        self.register_buffer("kept_token_ids", torch.zeros(cfg.num_tokens, dtype=torch.long))
        self.register_buffer("token_map", torch.zeros(cfg.full_vocab_size, dtype=torch.long))
        if kept_token_ids is not None:
            self.set_vocab(kept_token_ids)

    def set_vocab(self, kept_token_ids: Sequence[int] | Tensor) -> None:
        """Fill ``kept_token_ids`` and the id → row ``token_map`` (unknown ids → ``[UNK]`` row)."""
        cfg = self.config
        try:
            ids, token_map = token_rows(
                kept_token_ids, cfg.full_vocab_size, cfg.unk_token_id, cfg.pad_token_id, cfg.num_tokens
            )
        except ModelError as exc:
            raise ModelError(f"{type(self).__name__}: {exc}") from None
        self.kept_token_ids.copy_(ids)
        self.token_map.copy_(token_map)

    @classmethod
    def for_data(
        cls, texts: Iterable[str] | None = None, label_names: Sequence[str] | None = None, **params: Any
    ) -> Student:
        """A fresh student over the word pieces of ``texts`` (through :attr:`builder`)."""
        return build_from_texts(cls, getattr(cls, cls.builder), texts, label_names, params)

    def pruned_tokenizer(self, tokenizer: Any) -> Any:
        """The teachers' ``tokenizer`` rewritten to this student's kept pieces (ids = rows)."""
        return pruned_tokenizer(tokenizer, self.kept_token_ids, self.config.max_length)

    def forward(self, batch: dict[str, Tensor]) -> ModelOutput:
        """Classify ``batch["input_ids"]`` (teacher tokenizer ids; ``attention_mask`` optional)."""
        name = type(self).__name__
        if "input_ids" not in batch:
            raise ModelError(
                f"{name} needs batch['input_ids'] but the batch has keys {sorted(batch)}; "
                "collate with kgkd.data.TextCollator"
            )
        ids = batch["input_ids"][:, : self.config.max_length]
        mask = batch.get("attention_mask")
        mask = ids.new_ones(ids.shape) if mask is None else mask[:, : self.config.max_length]
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.config.full_vocab_size):
            raise ModelError(
                f"{name}: input_ids outside 0..{self.config.full_vocab_size - 1}; tokenize with the "
                "teachers' (MiniLM) tokenizer"
            )
        return self.forward_rows(self.token_map[ids], mask)

    def forward_rows(self, rows: Tensor, mask: Tensor) -> ModelOutput:  # pragma: no cover - abstract
        """Forward on ids already in the pruned vocabulary (what an exported model sees)."""
        raise NotImplementedError
