"""Compact students: ``TextStudent`` (pruned-vocab transformer), ``DigitStudent`` (small CNN)."""

from kgkd.models.students.base import STUDENTS, Student, load_student
from kgkd.models.students.digit import DigitStudent, DigitStudentConfig
from kgkd.models.students.text import TextStudent, TextStudentConfig, build_vocab, minilm_word_embeddings

__all__ = [
    "STUDENTS",
    "Student",
    "load_student",
    "DigitStudent",
    "DigitStudentConfig",
    "TextStudent",
    "TextStudentConfig",
    "build_vocab",
    "minilm_word_embeddings",
]
