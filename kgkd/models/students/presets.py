"""Named student sizes (the ladder): ``text-static`` / ``text-tiny`` / ``text-small`` / ``text-base``,
``digit`` / ``digit-fast``.

A preset is a student architecture plus its sizes and a parameter budget; the budget is
checked when the student is built (text students' embedding tables depend on the texts, so
their vocabularies are capped by ``max_tokens``):

============  =========  ==========================================================================
preset        budget     what
============  =========  ==========================================================================
text-static   ≤ 5.7 M    ``StaticStudent``: MiniLM's isolated-piece outputs, PCA to d=256, for 20,000 pieces
                         (the texts' pieces topped up with MiniLM's commonest), SIF mean → MLP head
text-tiny     ≤ 1 M      ``TextStudent`` from scratch (d=128, 2 layers), top-5,000 word pieces,
                         embeddings PCA-initialised from MiniLM
text-small    ≤ 5.7 M    ``BertStudent``: MiniLM's first layer + pooler, top-8,000 word pieces
text-base     ≤ 15 M     ``BertStudent``: MiniLM's first 3 of 6 layers, every word piece the texts use
digit         —          ``DigitStudent`` (32/64/64 channels, ~90 k parameters)
digit-fast    ≤ 40 k     ``DigitStudent`` with 16/32/32 channels and a stride-2 stem (~4× fewer MACs)
============  =========  ==========================================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kgkd.errors import ConfigError, ModelError
from kgkd.models.params import count_parameters
from kgkd.models.students.base import STUDENTS, Student
from kgkd.utils.registry import Registry
from kgkd.utils.suggest import suggestion


@dataclass(frozen=True)
class StudentPreset:
    """One rung of the ladder: architecture, sizes, parameter budget and a one-line description.

    ``lr`` is the engine learning rate the rung wants (None: the recipe's): a teacher-initialised
    student is fine-tuned, and the scratch students' 2e-3 would wash out MiniLM's weights; at
    1e-4 the one-layer student's [CLS] pooler stayed at chance for 3 epochs on 384 Yelp
    reviews (0.50), at 3e-4 it reached 0.77 test accuracy (measured, seed 0).
    """

    name: str
    modality: str
    architecture: str
    description: str
    max_params: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    lr: float | None = None

    def build(
        self,
        texts: Iterable[str] | None = None,
        label_names: Sequence[str] | None = None,
        **overrides: Any,
    ) -> Student:
        """A fresh student of this preset (text presets need ``texts`` for their vocabulary).

        Raises:
            ConfigError: texts missing for a text preset, or an unknown override.
            ModelError: the built student exceeds the preset's parameter budget.
        """
        if self.modality == "text" and texts is None:
            raise ConfigError(f"student preset '{self.name}' needs the domains' texts to build its vocabulary")
        try:
            student = STUDENTS.get(self.architecture).for_data(texts, label_names, **{**self.options, **overrides})
        except ConfigError as exc:
            raise ConfigError(f"student preset '{self.name}': {exc}") from None
        if self.max_params is not None:
            n = count_parameters(student)
            if n > self.max_params:
                raise ModelError(
                    f"student preset '{self.name}' built {n:,} parameters, over its budget of "
                    f"{self.max_params:,}; lower max_tokens (vocabulary) or the sizes you overrode"
                )
        return student


#: The student ladder by name.
STUDENT_PRESETS: Registry[StudentPreset] = Registry("student preset")


def _register(preset: StudentPreset) -> None:
    STUDENT_PRESETS.register(preset.name)(preset)


_register(StudentPreset(
    "text-static", "text", "static",
    "static MiniLM piece vectors (model2vec-style: isolated-piece outputs, PCA d=256), 20k pieces, SIF mean + MLP head",
    max_params=5_700_000,
    options={"max_tokens": 20000, "fill_vocab": True, "dim": 256, "hidden_dim": 256, "pooling": "sif"},
))  # fmt: skip
_register(StudentPreset(
    "text-tiny", "text", "text", "scratch transformer d=128 x2 layers, top-5k word pieces (PCA MiniLM embeddings)",
    max_params=1_000_000,
    options={"max_tokens": 5000, "dim": 128, "num_layers": 2, "num_heads": 4, "ff_dim": 256,
             "init_from_teacher": True},
))  # fmt: skip
_register(StudentPreset(
    "text-small", "text", "bert", "MiniLM layer 1 of 6 + pooler, top-8k word pieces (teacher-initialised)",
    max_params=5_700_000, options={"num_layers": 1, "max_tokens": 8000}, lr=3e-4,
))  # fmt: skip
_register(StudentPreset(
    "text-base", "text", "bert", "MiniLM layers 1-3 of 6 + pooler, all in-domain word pieces (teacher-initialised)",
    max_params=15_000_000, options={"num_layers": 3}, lr=2e-4,
))  # fmt: skip
_register(StudentPreset("digit", "image", "digit", "CNN 32/64/64 channels (~90k parameters)"))
_register(StudentPreset(
    "digit-fast", "image", "digit", "CNN 16/32/32 channels, stride-2 stem (~32k parameters)",
    max_params=40_000, options={"channels": (16, 32, 32), "stem_stride": 2},
))  # fmt: skip


def build_preset(name: str, texts: Iterable[str] | None = None, label_names: Sequence[str] | None = None,
                 **overrides: Any) -> Student:  # fmt: skip
    """``STUDENT_PRESETS.get(name).build(...)``: a fresh student of the named rung."""
    return STUDENT_PRESETS.get(name).build(texts, label_names, **overrides)


def check_student_kind(kind: str) -> None:
    """Raise a ConfigError (closest name suggested) unless ``kind`` is a preset or an architecture."""
    if kind not in STUDENT_PRESETS and kind not in STUDENTS:
        names = [*STUDENT_PRESETS.names(), *STUDENTS.names()]
        raise ConfigError(
            f"unknown student '{kind}': not a preset ({', '.join(STUDENT_PRESETS.names())}) nor an "
            f"architecture ({', '.join(STUDENTS.names())}).{suggestion(kind, names)}"
        )


def student_modality(kind: str) -> str:
    """``"text"`` or ``"image"``: what the preset or architecture ``kind`` reads."""
    check_student_kind(kind)
    return STUDENT_PRESETS.get(kind).modality if kind in STUDENT_PRESETS else STUDENTS.get(kind).modality


def students_for(modality: str) -> list[str]:
    """The presets that read ``modality`` (for "pick one of" hints)."""
    return [n for n in STUDENT_PRESETS.names() if STUDENT_PRESETS.get(n).modality == modality]


def build_student(
    kind: str,
    texts: Iterable[str] | None = None,
    label_names: Sequence[str] | None = None,
    modality: str | None = None,
    data_facts: Mapping[str, Any] | None = None,
    **params: Any,
) -> Student:
    """A fresh student from a preset name (``text-small``) or an architecture name (``text``).

    This is the one place recipes and the CLI turn a name into a student; a new architecture
    (one file with ``@STUDENTS.register``) or preset (one ``_register`` line) needs nothing else.
    ``data_facts`` are properties of the data (``max_length``, ``input_size``) a student adopts
    when its config has such a field and neither ``params`` nor the preset set it.

    Raises:
        ConfigError: unknown name (with the closest preset/architecture), or a student that reads
            another modality than the data's.
    """
    wanted = student_modality(kind)
    preset = STUDENT_PRESETS.get(kind) if kind in STUDENT_PRESETS else None
    if modality is not None and wanted != modality:
        raise ConfigError(
            f"student '{kind}' reads {wanted} but the domains hold {modality}; pick one of {students_for(modality)}"
        )
    arch = preset.architecture if preset is not None else kind
    fields = {f.name for f in dataclasses.fields(STUDENTS.get(arch).config_class)}
    fixed = set(params) | (set(preset.options) if preset is not None else set())
    params = {**{k: v for k, v in (data_facts or {}).items() if k in fields and k not in fixed}, **params}
    if preset is not None:
        return preset.build(texts, label_names, **params)
    return STUDENTS.get(kind).for_data(texts, label_names, **params)
