"""Hugging Face sequence classifiers as teachers.

Wraps a local ``AutoModelForSequenceClassification`` checkpoint (never fetched from a hub)
and exposes, besides the logits, sentence-level features that do not depend on the
padded sequence length, so they can be cached and projected:

- ``"pooled"``: mean of the last hidden state over the attention mask, ``[B, H]``;
- ``"cls"``: last hidden state of the first token, ``[B, H]``;
- ``"hidden_<i>"``: masked mean of hidden state ``i`` (0 = embeddings), ``[B, H]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from kgkd.errors import CheckpointError, ModelError
from kgkd.models.base import ModelOutput, Teacher
from kgkd.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME, check_safetensors
from kgkd.utils.compat import auto_sequence_classifier, hide_broken_torchvision

DEFAULT_FEATURES: tuple[str, ...] = ("pooled", "cls")
_HIDDEN = re.compile(r"^hidden_(\d+)$")


def masked_mean(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean over the sequence of ``hidden`` [B, L, H], counting positions where ``mask`` [B, L] is 1."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


TOKENIZER_FILES: tuple[str, ...] = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json")


def load_own_tokenizer(folder: str | os.PathLike[str]) -> Any:
    """The tokenizer saved in a model folder (offline), or None when the folder holds none."""
    folder = Path(folder)
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        return None
    hide_broken_torchvision()
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load the tokenizer in {folder}: {exc}") from None


def tokenizer_digest(tokenizer: Any) -> str:
    """sha256 of a tokenizer's class, vocabulary and casing: a different tokenizer gives other caches."""
    if tokenizer is None:
        return ""
    vocab = sorted(tokenizer.get_vocab().items())
    lower = getattr(tokenizer, "do_lower_case", None)
    blob = json.dumps([type(tokenizer).__name__, lower, vocab], ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


class HFTeacher(Teacher):
    """A ``transformers`` sequence classifier as a teacher over ``input_ids``/``attention_mask``.

    Args:
        model: a loaded ``*ForSequenceClassification`` model.
        name: teacher name (graph teacher node local name).
        label_names: label index → name; default from ``model.config.id2label``.
        feature_names: any of ``"pooled"``, ``"cls"``, ``"hidden_<i>"``.
        source: where the weights came from (recorded in the fingerprint config).
        tokenizer: the model's own tokenizer (``from_pretrained`` loads it from the folder);
            :meth:`collator` tokenises with it, and its vocabulary is part of the fingerprint.
    """

    def __init__(
        self,
        model: nn.Module,
        name: str,
        label_names: Sequence[str] | None = None,
        feature_names: Sequence[str] = DEFAULT_FEATURES,
        source: str = "",
        tokenizer: Any = None,
    ) -> None:
        config = getattr(model, "config", None)
        if label_names is None:
            id2label = getattr(config, "id2label", None) or {}
            label_names = [str(id2label[i]) for i in sorted(id2label)]
        n_layers = int(getattr(config, "num_hidden_layers", 0))
        for f in feature_names:
            m = _HIDDEN.match(f)
            if f not in DEFAULT_FEATURES and not (m and int(m.group(1)) <= n_layers):
                raise ModelError(
                    f"teacher '{name}': unknown feature '{f}'; use 'pooled', 'cls' or 'hidden_<i>' with "
                    f"0 <= i <= {n_layers}"
                )
        num_labels = int(getattr(config, "num_labels", len(label_names)))
        if len(label_names) != num_labels:
            raise ModelError(
                f"teacher '{name}': {len(label_names)} label names {list(label_names)} for a model with "
                f"{num_labels} outputs; pass one name per output"
            )
        super().__init__(name, label_names, feature_names, modality="text")
        self.model = model
        self.source = source
        self.tokenizer = tokenizer

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        name: str | None = None,
        label_names: Sequence[str] | None = None,
        feature_names: Sequence[str] = DEFAULT_FEATURES,
        **model_kwargs: Any,
    ) -> HFTeacher:
        """Load a local checkpoint folder (``config.json`` + ``model.safetensors``) offline.

        Raises:
            CheckpointError: the folder, its config or its weights are missing or corrupt.
        """
        folder = Path(path)
        if not (folder / CONFIG_NAME).is_file():
            raise CheckpointError(
                f"{folder / CONFIG_NAME} does not exist; {folder} is not a saved model folder"
            )
        if (folder / WEIGHTS_NAME).exists():
            check_safetensors(folder / WEIGHTS_NAME)
        try:
            model = auto_sequence_classifier().from_pretrained(
                str(folder), local_files_only=True, **model_kwargs
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"cannot load the model in {folder}: {exc}") from None
        return cls(
            model.eval(), name or folder.name, label_names, feature_names, source=str(folder),
            tokenizer=load_own_tokenizer(folder),
        )  # fmt: skip

    def collator(self, max_length: int = 64, image_size: int = 28) -> Any:
        """A :class:`~kgkd.data.TextCollator` with this model's own tokenizer (``max_length`` capped
        at the model's position limit)."""
        from kgkd.data.collate import TextCollator

        if self.tokenizer is None:
            raise ModelError(
                f"teacher '{self.name}' has no tokenizer: {self.source or 'the model'} holds no tokenizer files; "
                "save them next to the weights with tokenizer.save_pretrained(folder)"
            )
        limit = int(getattr(getattr(self.model, "config", None), "max_position_embeddings", 0) or 0)
        return TextCollator(self.tokenizer, min(max_length, limit) if limit > 1 else max_length)

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg["model_config"] = self.model.config.to_dict() if hasattr(self.model, "config") else {}
        cfg["model_config"].pop("_name_or_path", None)
        cfg["model_config"].pop("transformers_version", None)
        cfg["tokenizer"] = tokenizer_digest(self.tokenizer)
        return cfg

    def forward(self, batch: dict[str, Tensor]) -> ModelOutput:
        """Classify ``batch["input_ids"]`` (mask from ``batch["attention_mask"]`` if present)."""
        if "input_ids" not in batch:
            raise ModelError(
                f"teacher '{self.name}' needs batch['input_ids'] but the batch has keys {sorted(batch)}; "
                "collate with kgkd.data.TextCollator"
            )
        ids = batch["input_ids"]
        mask = batch.get("attention_mask")
        if mask is None:
            mask = ids.new_ones(ids.shape)
        out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        hidden = out.hidden_states
        features: dict[str, Tensor] = {}
        for f in self.feature_names:
            if f == "pooled":
                features[f] = masked_mean(hidden[-1], mask)
            elif f == "cls":
                features[f] = hidden[-1][:, 0]
            else:
                features[f] = masked_mean(hidden[int(f.split("_")[1])], mask)
        return ModelOutput(self.reorder(out.logits), features)
