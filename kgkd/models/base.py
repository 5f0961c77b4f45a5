"""The teacher contract every distillation component talks to.

A teacher is an ``nn.Module`` that maps a collated batch (a dict of tensors, as built by
``kgkd.data``'s collators) to a :class:`ModelOutput`: logits in the teacher's *own* label
space plus named intermediate features. Wrappers for concrete model families
(Hugging Face sequence classifiers, arbitrary torch modules) subclass :class:`Teacher`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from kgkd.errors import ModelError

#: Modalities a model can consume; they match ``DomainSpec.modality`` in ``kgkd.data``.
MODALITIES: tuple[str, ...] = ("text", "image")


@dataclass
class ModelOutput:
    """What a teacher or student returns for one batch.

    Attributes:
        logits: ``[B, C]`` unnormalised scores over the model's own label set.
        features: named intermediate representations, each ``[B, ...]``.
    """

    logits: Tensor
    features: dict[str, Tensor] = field(default_factory=dict)

    def detach(self) -> ModelOutput:
        """A copy with every tensor detached from the autograd graph."""
        return ModelOutput(self.logits.detach(), {k: v.detach() for k, v in self.features.items()})


def state_fingerprint(module: nn.Module, config: dict[str, Any]) -> str:
    """sha256 over every tensor of ``module.state_dict()`` (name, dtype, shape, bytes) and ``config``.

    Two modules with the same weights and the same config get the same digest, so caches of
    their outputs can be reused safely; any change in either invalidates them.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(config, sort_keys=True, default=str).encode("utf-8"))
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class Teacher(nn.Module):
    """Base class of all teachers: a named classifier over a fixed label set.

    Subclasses implement :meth:`forward` and may extend :meth:`config` with whatever
    (besides the weights) changes their outputs, e.g. preprocessing constants.

    Args:
        name: teacher name, identical to the graph's teacher node local name (``teacher_amazon``).
        label_names: label index → label name in the teacher's own label space.
        feature_names: names of the features :meth:`forward` returns.
        modality: ``"text"`` or ``"image"``.
    """

    def __init__(
        self, name: str, label_names: Sequence[str], feature_names: Sequence[str], modality: str
    ) -> None:
        super().__init__()
        if modality not in MODALITIES:
            raise ModelError(
                f"teacher '{name}': modality '{modality}' is not one of {list(MODALITIES)}"
            )
        self.name = name
        self.label_names: tuple[str, ...] = tuple(label_names)
        self.feature_names: tuple[str, ...] = tuple(feature_names)
        self.modality = modality
        self.label_order: list[int] | None = None
        self._fingerprint: str | None = None

    @property
    def num_labels(self) -> int:
        """Size of the teacher's label set."""
        return len(self.label_names)

    def config(self) -> dict[str, Any]:
        """Everything besides the weights that determines the outputs (hashed into the fingerprint)."""
        cfg = {
            "class": type(self).__name__,
            "name": self.name,
            "label_names": list(self.label_names),
            "feature_names": list(self.feature_names),
            "modality": self.modality,
        }
        if self.label_order is not None:
            cfg["label_order"] = list(self.label_order)
        return cfg

    def set_label_order(self, order: Sequence[int], label_names: Sequence[str]) -> None:
        """Reorder the wrapped model's outputs: logit ``i`` becomes model output ``order[i]``.

        Used when a registered model's own label order differs from the graph's label set.
        """
        if sorted(order) != list(range(self.num_labels)) or len(label_names) != self.num_labels:
            raise ModelError(
                f"teacher '{self.name}': label order {list(order)} / names {list(label_names)} must be a permutation "
                f"of its {self.num_labels} outputs"
            )
        self.label_order = [int(i) for i in order]
        self.label_names = tuple(label_names)
        self._fingerprint = None

    def reorder(self, logits: Tensor) -> Tensor:
        """``logits`` [B, C] in the label order of :meth:`set_label_order` (unchanged when none was set)."""
        return logits if self.label_order is None else logits[:, self.label_order]

    def fingerprint(self) -> str:
        """Stable sha256 of weights + config; computed once and cached (teachers are frozen)."""
        if self._fingerprint is None:
            self._fingerprint = state_fingerprint(self, self.config())
        return self._fingerprint

    def collator(self, max_length: int = 64, image_size: int = 28) -> Callable[[list[Any]], dict[str, Any]]:
        """The collator that turns dataset items into this teacher's input batch.

        The model owns its input pipeline: image teachers take kgkd's ``pixels`` at
        ``image_size`` and convert them themselves; text teachers override this with their own
        tokenizer (or vectoriser). ``max_length`` caps tokens for tokenised text.
        """
        if self.modality == "image":
            from kgkd.data.collate import ImageCollator

            return ImageCollator(size=image_size)
        raise ModelError(
            f"teacher '{self.name}' ({type(self).__name__}) reads text but carries no tokenizer; wrap a Hugging "
            "Face model with HFTeacher.from_pretrained(folder) (the folder's tokenizer is used) or override collator()"
        )

    def forward(self, batch: dict[str, Tensor]) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"name={self.name!r}, labels={self.num_labels}, features={list(self.feature_names)}"
