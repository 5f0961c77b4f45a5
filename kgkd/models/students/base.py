"""Common base of compact students: config dataclass, feature shapes, save/load.

A student checkpoint is a folder with ``model.safetensors`` and ``config.json``
(``{"architecture": <name in STUDENTS>, "format_version": 1, ...config fields}``), written
atomically. :func:`load_student` rebuilds any registered student from such a folder in one
call and validates every config key against the student's config dataclass.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from torch import Tensor, nn

from kgkd.errors import CheckpointError, ConfigError
from kgkd.models.base import ModelOutput
from kgkd.models.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    atomic_dir,
    load_weights,
    read_json,
    save_weights,
    write_json,
)
from kgkd.utils.registry import Registry
from kgkd.utils.typed_config import coerce

#: Student architectures by name (``"text"``, ``"digit"``).
STUDENTS: Registry[type[Student]] = Registry("student architecture")
FORMAT_VERSION = 1


def config_from_dict(config_cls: type, values: dict[str, Any], where: str) -> Any:
    """Build the dataclass ``config_cls`` from ``values``, checking keys and value types.

    Values go through the shared coercer (:func:`kgkd.utils.typed_config.coerce`), so a
    student's ``config.json`` is checked by the same rules as recipe and engine configs.

    Raises:
        ConfigError: unknown key, missing required key or wrong type (message names ``where``
            and the key, and lists the accepted keys).
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; accepted keys: {sorted(fields)}")
    missing = [n for n, f in fields.items() if n not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]  # fmt: skip
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {missing}")
    try:
        out = {name: coerce(value, hints[name], name) for name, value in values.items()}
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return config_cls(**out)


class Student(nn.Module):
    """Base class of kgkd students: ``forward(batch) -> ModelOutput`` plus (de)serialisation.

    Subclasses set ``architecture`` (their ``STUDENTS`` name) and ``config_class`` (a frozen
    dataclass with a ``label_names`` field), build their layers from ``self.config`` and
    implement :meth:`forward` and :attr:`feature_shapes`.
    """

    architecture: ClassVar[str]
    config_class: ClassVar[type]
    modality: ClassVar[str]

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    @property
    def label_names(self) -> tuple[str, ...]:
        """Label index → name of the student's label set."""
        return tuple(self.config.label_names)

    @property
    def num_labels(self) -> int:
        return len(self.config.label_names)

    @property
    def feature_shapes(self) -> dict[str, tuple[int, ...]]:  # pragma: no cover - abstract
        """Shape (without the batch dimension) of every feature :meth:`forward` returns."""
        raise NotImplementedError

    def forward(self, batch: dict[str, Tensor]) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def collator(self, max_length: int = 64, image_size: int = 28) -> Any:
        """The collator that turns dataset items into this student's input batch (the model owns it).

        Text students read word-piece ids of :func:`student_tokenizer` (their vocabulary is a
        subset of it); image students take kgkd's ``pixels`` at ``image_size``.
        """
        from kgkd.data.collate import ImageCollator, TextCollator

        if self.modality == "image":
            return ImageCollator(size=image_size)
        return TextCollator(student_tokenizer(), max_length)

    @classmethod
    def for_data(
        cls, texts: Iterable[str] | None = None, label_names: Sequence[str] | None = None, **params: Any
    ) -> Student:
        """A fresh student (over ``label_names``, else its config's default labels): the one
        construction hook recipes, the CLI and presets call.

        ``params`` are the student's config fields; text students override this to build their
        vocabulary from ``texts`` (the domains' training texts).
        """
        values = dict(params) if label_names is None else {**params, "label_names": list(label_names)}
        return cls.from_config_dict(values, f"student '{cls.architecture}'")

    def config_dict(self) -> dict[str, Any]:
        """``config.json`` content: architecture, format version and the config fields."""
        values = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self.config).items()
        }
        return {"architecture": self.architecture, "format_version": FORMAT_VERSION, **values}

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``model.safetensors`` + ``config.json`` into ``directory`` atomically; return it."""
        with atomic_dir(directory) as tmp:
            save_weights(self.state_dict(), tmp / WEIGHTS_NAME)
            write_json(tmp / CONFIG_NAME, self.config_dict())
        return Path(directory)

    @classmethod
    def from_config_dict(cls, values: dict[str, Any], where: str = "config") -> Student:
        """A freshly initialised student from a ``config.json``-style dict (without architecture keys)."""
        return cls(config_from_dict(cls.config_class, values, where))


def build_from_texts(
    cls: type[Student], build: Any, texts: Iterable[str] | None, label_names: Sequence[str] | None, params: dict[str, Any]
) -> Student:
    """Shared body of text students' :meth:`Student.for_data`: ``build(texts, tokenizer, **params)`` with checks."""
    if texts is None:
        raise ConfigError(f"student '{cls.architecture}' builds its vocabulary from the domains' texts; none were given")
    labels = {} if label_names is None else {"label_names": tuple(label_names)}
    try:
        return build(texts, student_tokenizer(), **labels, **params)
    except TypeError as exc:
        raise ConfigError(f"student '{cls.architecture}': {exc}") from None


def student_tokenizer() -> Any:
    """The tokenizer text students are built on and read (the packaged MiniLM word pieces)."""
    from kgkd.data.tokenizer import load_minilm_tokenizer

    return load_minilm_tokenizer()


def load_student(directory: str | os.PathLike[str]) -> Student:
    """Rebuild a saved student (any architecture in ``STUDENTS``) from its folder.

    Raises:
        CheckpointError: folder, config or weights missing/corrupt, unknown architecture,
            bad config keys, or weights that do not fit the config.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise CheckpointError(
            f"student checkpoint folder {folder} does not exist; save one with student.save_pretrained('{folder}')"
        )
    cfg_file = folder / CONFIG_NAME
    values = read_json(cfg_file)
    arch = values.pop("architecture", None)
    version = values.pop("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{cfg_file}: format_version {version} is not supported (expected {FORMAT_VERSION})"
        )
    try:
        cls = STUDENTS.get(str(arch))
        model = cls.from_config_dict(values, where=str(cfg_file))
    except ConfigError as exc:
        raise CheckpointError(
            f"{cfg_file}: {exc}" if str(cfg_file) not in str(exc) else str(exc)
        ) from None
    state = load_weights(folder / WEIGHTS_NAME)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise CheckpointError(f"{folder / WEIGHTS_NAME} does not match {cfg_file}: {exc}") from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{folder / WEIGHTS_NAME} does not match {cfg_file}: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}; re-save the student"
        )
    return model.eval()
