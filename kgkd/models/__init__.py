"""Teachers and compact students.

- :class:`Teacher` / :class:`ModelOutput` — the contract (logits in the teacher's own label
  space + named features); wrappers :class:`HFTeacher` and :class:`ModuleTeacher`.
- :func:`load_ccexam_teacher` — the pretrained MNIST / USPS / SVHN nets of ``ccexam``.
- :func:`load_teacher` — any teacher by graph name; :func:`train_teacher` creates missing ones.
- Students: :class:`TextStudent`, :class:`DigitStudent`, registry :data:`STUDENTS`,
  ``student.save_pretrained(dir)`` / :func:`load_student`.
"""

from kgkd.models.base import ModelOutput, Teacher
from kgkd.models.ccexam import CCEXAM_NETS, load_ccexam_teacher
from kgkd.models.digit_cnn import DigitCNN, DigitCNNConfig
from kgkd.models.hf_teacher import HFTeacher
from kgkd.models.loading import TEACHER_KINDS, load_teacher, teacher_dir, teachers_root
from kgkd.models.module_teacher import ModuleTeacher
from kgkd.models.params import count_parameters
from kgkd.models.preprocess import ImagePreprocess
from kgkd.models.students import (
    STUDENTS,
    DigitStudent,
    DigitStudentConfig,
    Student,
    TextStudent,
    TextStudentConfig,
    load_student,
)
from kgkd.models.training import TeacherTrainResult, train_teacher

__all__ = [
    "CCEXAM_NETS",
    "STUDENTS",
    "TEACHER_KINDS",
    "DigitCNN",
    "DigitCNNConfig",
    "DigitStudent",
    "DigitStudentConfig",
    "HFTeacher",
    "ImagePreprocess",
    "ModelOutput",
    "ModuleTeacher",
    "Student",
    "Teacher",
    "TeacherTrainResult",
    "TextStudent",
    "TextStudentConfig",
    "count_parameters",
    "load_ccexam_teacher",
    "load_student",
    "load_teacher",
    "teacher_dir",
    "teachers_root",
    "train_teacher",
]
