"""Teachers and compact students.

- :class:`Teacher` / :class:`ModelOutput` — the contract (logits in the teacher's own label
  space + named features); wrappers :class:`HFTeacher` and :class:`ModuleTeacher`.
- :func:`load_ccexam_teacher` — the pretrained MNIST / USPS / SVHN nets of ``ccexam``.
- :func:`load_teacher` — any teacher by graph name; :func:`train_teacher` creates missing ones
  (kinds :data:`TRAIN_KINDS`: ``hf`` MiniLM fine-tune, ``tfidf_logreg``, ``cnn``), recording the
  training settings' fingerprint (:func:`plan_training`); :class:`TfidfLogRegTeacher`.
- Every teacher gives its own input pipeline: ``teacher.collator(max_length=..., image_size=...)``.
- :func:`load_checkpoint` — a checkpoint folder (trained, side-by-side ``name@fingerprint``, or
  registered with ``kgkd teachers add``).
- Students: :class:`TextStudent`, :class:`DigitStudent`, registry :data:`STUDENTS`,
  ``student.save_pretrained(dir)`` / :func:`load_student`.
"""

from kgkd.models.base import ModelOutput, Teacher
from kgkd.models.ccexam import CCEXAM_NETS, load_ccexam_teacher
from kgkd.models.digit_cnn import DigitCNN, DigitCNNConfig
from kgkd.models.hf_teacher import HFTeacher
from kgkd.models.loading import (
    TEACHER_KINDS,
    load_checkpoint,
    load_teacher,
    teacher_dir,
    teachers_root,
)
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
from kgkd.models.tfidf import TfidfLogRegTeacher
from kgkd.models.training import TRAIN_KINDS, TeacherTrainResult, plan_training, train_teacher

__all__ = [
    "CCEXAM_NETS",
    "STUDENTS",
    "TEACHER_KINDS",
    "TRAIN_KINDS",
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
    "TfidfLogRegTeacher",
    "count_parameters",
    "load_ccexam_teacher",
    "load_checkpoint",
    "load_student",
    "load_teacher",
    "plan_training",
    "teacher_dir",
    "teachers_root",
    "train_teacher",
]
