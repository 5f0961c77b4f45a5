"""``DigitCNN``: a small LeNet-style classifier for 28×28 gray images.

It is kgkd's teacher architecture ``"cnn"`` for image domains without a pretrained net
(``fashion_mnist``, ``uci_digits``): trained by ``kgkd teachers train`` and wrapped in a
:class:`~kgkd.models.module_teacher.ModuleTeacher` with features ``"conv"`` (last conv block,
``[B, 64, 7, 7]``) and ``"pooled"`` (hidden layer of the head, ``[B, hidden]``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor, nn

from kgkd.models.preprocess import ImagePreprocess

#: Feature name → submodule path, used when wrapping a DigitCNN as a teacher.
DIGIT_CNN_FEATURES: dict[str, str] = {"conv": "features", "pooled": "head.2"}


@dataclass(frozen=True)
class DigitCNNConfig:
    """Hyper-parameters of :class:`DigitCNN` (saved as its ``config.json``)."""

    num_labels: int = 10
    input_size: int = 28
    channels: tuple[int, int] = (32, 64)
    hidden: int = 128
    dropout: float = 0.25
    mean: float = 0.5
    std: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


class DigitCNN(nn.Module):
    """conv(3×3)–ReLU–pool ×2 → flatten → Linear–ReLU → Linear; input ``[B, 1, S, S]`` normalised."""

    def __init__(self, config: DigitCNNConfig | None = None) -> None:
        super().__init__()
        self.config = config or DigitCNNConfig()
        c1, c2 = self.config.channels
        side = self.config.input_size // 4
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(self.config.dropout), nn.Sequential(nn.Linear(c2 * side * side, self.config.hidden), nn.ReLU()),
            nn.Dropout(self.config.dropout), nn.Linear(self.config.hidden, self.config.num_labels),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[B, num_labels]`` for a normalised ``[B, 1, S, S]`` batch."""
        return self.head(self.features(x))

    def preprocess(self) -> ImagePreprocess:
        """The batch → input conversion this net is trained and used with."""
        return ImagePreprocess(
            size=self.config.input_size,
            channels=1,
            mean=(self.config.mean,),
            std=(self.config.std,),
        )
