"""Compact students: ``TextStudent`` (pruned-vocab transformer), ``BertStudent`` (teacher-initialised
pruned MiniLM), ``StaticStudent`` (static MiniLM piece vectors + MLP), ``DigitStudent`` (small CNN), and the named ladder ``STUDENT_PRESETS``."""

from kgkd.models.students.base import STUDENTS, Student, load_student
from kgkd.models.students.bert import BertStudent, BertStudentConfig
from kgkd.models.students.digit import DigitStudent, DigitStudentConfig
from kgkd.models.students.presets import (
    STUDENT_PRESETS,
    StudentPreset,
    build_preset,
    build_student,
    check_student_kind,
    student_modality,
    students_for,
)
from kgkd.models.students.static import StaticStudent, StaticStudentConfig
from kgkd.models.students.text import (
    TextStudent,
    TextStudentConfig,
    build_vocab,
    minilm_word_embeddings,
)

__all__ = [
    "STUDENTS",
    "STUDENT_PRESETS",
    "BertStudent",
    "BertStudentConfig",
    "DigitStudent",
    "DigitStudentConfig",
    "StaticStudent",
    "StaticStudentConfig",
    "Student",
    "StudentPreset",
    "TextStudent",
    "TextStudentConfig",
    "build_preset",
    "build_student",
    "build_vocab",
    "check_student_kind",
    "load_student",
    "minilm_word_embeddings",
    "student_modality",
    "students_for",
]
