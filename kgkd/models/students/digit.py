"""``DigitStudent``: a ~90k-parameter CNN for 28×28 gray images (digits, clothing)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgkd.errors import ModelError
from kgkd.models.base import ModelOutput
from kgkd.models.students.base import STUDENTS, Student

DIGIT_LABELS: tuple[str, ...] = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class DigitStudentConfig:
    """Hyper-parameters of :class:`DigitStudent`.

    Attributes:
        label_names: the student's labels (default digits 0..9).
        input_size: side the input is resized to (feature maps are ``input_size // 4``).
        channels: output channels of the three conv blocks.
        dim: width of the ``"pooled"`` feature.
        grid: the last feature map is average-pooled to ``grid × grid`` cells, not to one: a
            global average pool throws away where strokes are, and measured on 1,000 MNIST
            images (4 epochs) it scored 0.47 test accuracy in eval mode vs 0.91 with a 2×2 grid.
        dropout: dropout before the classifier.
        stem_stride: 2 makes the first block a stride-2 convolution instead of a full-size
            convolution + 2×2 max-pool (same map size, a quarter of its multiply-adds).
    """

    label_names: tuple[str, ...] = DIGIT_LABELS
    input_size: int = 28
    channels: tuple[int, ...] = (32, 64, 64)
    dim: int = 128
    grid: int = 2
    dropout: float = 0.1
    stem_stride: int = 1


def grid_pool(x: Tensor, grid: int) -> Tensor:
    """``F.adaptive_avg_pool2d(x, grid)`` written with slices and means (same bins), so it
    exports to ONNX when the map side is not a multiple of ``grid`` (7 → 2)."""
    h, w = int(x.shape[-2]), int(x.shape[-1])  # constants in an exported graph
    if h % grid == 0 and w % grid == 0:
        return F.avg_pool2d(x, (h // grid, w // grid))
    rows = [(i * h // grid, ((i + 1) * h + grid - 1) // grid) for i in range(grid)]
    cols = [(j * w // grid, ((j + 1) * w + grid - 1) // grid) for j in range(grid)]
    cells = [
        torch.cat([x[:, :, r0:r1, c0:c1].mean(dim=(2, 3), keepdim=True) for c0, c1 in cols], dim=3)
        for r0, r1 in rows
    ]
    return torch.cat(cells, dim=2)


def _block(cin: int, cout: int, pool: bool, stride: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


@STUDENTS.register("digit")
class DigitStudent(Student):
    """Three conv blocks (two with 2×2 pooling) → average pool to a ``grid × grid`` map → Linear–ReLU → classifier.

    Reads ``batch["pixels"]`` ([B,1,H,W] in 0..1; resized to ``input_size`` if needed) and
    returns features ``"conv"`` ([B, C, S/4, S/4], last conv block) and ``"pooled"`` ([B, dim]).
    """

    architecture = "digit"
    config_class = DigitStudentConfig
    modality = "image"

    def __init__(self, config: DigitStudentConfig | None = None) -> None:
        super().__init__(config or DigitStudentConfig())
        cfg = self.config
        if len(cfg.channels) != 3 or cfg.input_size % 4 or cfg.grid < 1 or cfg.stem_stride not in (1, 2):
            raise ModelError(
                f"DigitStudent: channels must have 3 entries, input_size be a multiple of 4, grid >= 1 and "
                f"stem_stride 1 or 2; got channels={cfg.channels}, input_size={cfg.input_size}, grid={cfg.grid}, "
                f"stem_stride={cfg.stem_stride}"
            )
        c1, c2, c3 = cfg.channels
        stem = _block(1, c1, True) if cfg.stem_stride == 1 else _block(1, c1, False, stride=2)
        self.conv = nn.Sequential(stem, _block(c1, c2, True), _block(c2, c3, False))
        self.project = nn.Sequential(nn.Linear(c3 * cfg.grid * cfg.grid, cfg.dim), nn.ReLU())
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.dim, len(cfg.label_names))

    @property
    def feature_shapes(self) -> dict[str, tuple[int, ...]]:
        side = self.config.input_size // 4
        return {"conv": (self.config.channels[-1], side, side), "pooled": (self.config.dim,)}

    def forward(self, batch: dict[str, Tensor]) -> ModelOutput:
        if "pixels" not in batch:
            raise ModelError(
                f"DigitStudent needs batch['pixels'] but the batch has keys {sorted(batch)}; "
                "collate with kgkd.data.ImageCollator"
            )
        x = batch["pixels"].float()
        if x.dim() == 3:
            x = x.unsqueeze(1)
        size = self.config.input_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        conv = self.conv((x - 0.5) / 0.5)
        pooled = self.project(grid_pool(conv, self.config.grid).flatten(1))
        return ModelOutput(self.classifier(self.dropout(pooled)), {"conv": conv, "pooled": pooled})
