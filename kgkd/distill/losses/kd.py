"""``kd``: Hinton et al. (2015) logit distillation from one teacher.

``KL(p_T ‖ q_T) · T²`` with ``p_T = softmax(z_teacher / T)`` and
``q_T = softmax(z_student / T)``, averaged over the batch. A teacher with another
label set is moved into the student's labels by its ``LabelMap`` (as in
``multi_teacher_kd``).
"""

from __future__ import annotations

from torch import Tensor

from kgkd.distill.context import LossContext
from kgkd.distill.losses.base import LOSSES, DistillLoss
from kgkd.distill.losses.functional import kl_per_sample, masked_log_softmax, teacher_probs
from kgkd.distill.losses.multi_teacher_kd import context_temperature, label_map_for
from kgkd.errors import ConfigError, DistillError


@LOSSES.register("kd")
class KDLoss(DistillLoss):
    """Single-teacher KD at temperature T (``ctx.temperature``, scheduled by the engine), scaled by T².

    Args:
        teacher: which teacher of ``ctx.teachers`` to distil from.
    """

    def __init__(self, teacher: int = 0) -> None:
        super().__init__()
        if teacher < 0:
            raise ConfigError(f"kd: teacher index must be >= 0, got {teacher}")
        self.teacher = teacher

    def per_sample(self, ctx: LossContext) -> Tensor:
        if self.teacher >= ctx.num_teachers:
            raise DistillError(
                f"kd: teacher index {self.teacher} is out of range, the batch has {ctx.num_teachers} "
                "teacher output(s); use multi_teacher_kd for several teachers"
            )
        temperature = context_temperature(ctx)
        student = ctx.student.logits
        p, covered = teacher_probs(
            ctx.teachers[self.teacher].logits,
            student.shape[-1],
            temperature,
            label_map_for(ctx, self.teacher),
            f"teacher {self.teacher}",
        )
        return kl_per_sample(p, masked_log_softmax(student, covered, temperature)) * temperature**2
