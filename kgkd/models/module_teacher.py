"""Wrap any ``torch.nn.Module`` classifier as a :class:`Teacher`.

Features are taken from named submodules with forward hooks, so any existing network
(a ccexam digit net, a torchvision model, your own CNN) becomes a teacher without changing
its code: name the layers whose outputs you want (``"features"``, ``"classifier.1"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from kgkd.errors import ModelError
from kgkd.models.base import ModelOutput, Teacher

#: Turns a collated batch into the wrapped module's input tensor.
Preprocess = Callable[[dict[str, Tensor]], Tensor]


class ModuleTeacher(Teacher):
    """A teacher around an arbitrary module whose ``forward(x)`` returns ``[B, C]`` logits.

    Args:
        module: the classifier to wrap (put in eval mode; its weights are not changed).
        name: teacher name (graph teacher node local name).
        label_names: label index → name.
        feature_layers: submodule paths whose outputs become features, either a list
            (feature name = path) or a mapping ``{feature name: submodule path}``.
        preprocess: callable ``batch -> input tensor``; by default ``batch["pixels"]``
            (image) or ``batch["input_ids"]`` (text).
        modality: ``"image"`` or ``"text"``.
        preprocess_config: JSON-able description of ``preprocess`` (hashed into the fingerprint).

    Raises:
        ModelError: a feature layer does not exist (the message lists the available ones).
    """

    def __init__(
        self,
        module: nn.Module,
        name: str,
        label_names: Sequence[str],
        feature_layers: Sequence[str] | Mapping[str, str] = (),
        preprocess: Preprocess | None = None,
        modality: str = "image",
        preprocess_config: dict[str, Any] | None = None,
    ) -> None:
        layers = (
            dict(feature_layers)
            if isinstance(feature_layers, Mapping)
            else {p: p for p in feature_layers}
        )
        super().__init__(name, label_names, list(layers), modality)
        self.module = module.eval()
        self.preprocess = preprocess
        self.preprocess_config = dict(preprocess_config or {})
        self.feature_layers = layers
        self._captured: dict[str, Tensor] = {}
        self._handles: list[RemovableHandle] = []
        submodules = dict(module.named_modules())
        for feature, path in layers.items():
            if path not in submodules or path == "":
                available = ", ".join(repr(n) for n in submodules if n) or "(none)"
                raise ModelError(
                    f"teacher '{name}': feature layer '{path}' (feature '{feature}') is not a submodule of "
                    f"{type(module).__name__}; available layers: {available}"
                )
            self._handles.append(submodules[path].register_forward_hook(self._make_hook(feature)))

    def _make_hook(self, feature: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            out = output[0] if isinstance(output, (tuple, list)) else output
            # Clone: in-place ops later in the network (ReLU(inplace=True)) must not alter it.
            self._captured[feature] = out.clone()

        return hook

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg.update(
            module=type(self.module).__name__,
            feature_layers=self.feature_layers,
            preprocess=self.preprocess_config,
        )
        return cfg

    def inputs(self, batch: dict[str, Tensor]) -> Tensor:
        """The wrapped module's input for ``batch`` (after ``preprocess``)."""
        if self.preprocess is not None:
            return self.preprocess(batch)
        key = "pixels" if self.modality == "image" else "input_ids"
        if key not in batch:
            raise ModelError(
                f"teacher '{self.name}' needs batch['{key}'] but the batch has keys {sorted(batch)}; "
                "collate with kgkd.data's ImageCollator/TextCollator or pass preprocess="
            )
        return batch[key]

    def forward(self, batch: dict[str, Tensor]) -> ModelOutput:
        """Run the module on the preprocessed batch and collect the hooked features."""
        self._captured = {}
        logits = self.module(self.inputs(batch))
        if (
            not isinstance(logits, Tensor)
            or logits.dim() != 2
            or logits.shape[1] != self.num_labels
        ):
            shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ModelError(
                f"teacher '{self.name}': module returned {shape}, expected logits [B, {self.num_labels}] "
                f"(one column per label {list(self.label_names)})"
            )
        features, self._captured = self._captured, {}
        return ModelOutput(self.reorder(logits), {f: features[f] for f in self.feature_names})

    def remove_hooks(self) -> None:
        """Detach the forward hooks from the wrapped module."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
