"""The pretrained digit classifiers shipped by the ``ccexam`` package, as kgkd teachers.

ccexam 1.0.0 packages three CNNs (``weights/{mnist,usps,svhn}.pth``, plain state dicts)
trained on MNIST (28×28 gray), USPS (16×16 gray) and SVHN (32×32 RGB) with the per-dataset
mean/std in ``ccexam.constants.DATASET_STATS``. All three expect light digits on a dark
background after normalisation (measured: inverting colours costs ~30–60 points of accuracy
for MNIST/USPS and changes SVHN by ~2), so kgkd's white-on-black pixels are only resized,
repeated to RGB for SVHN, and normalised.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from kgkd.errors import CheckpointError, ModelError
from kgkd.models.module_teacher import ModuleTeacher
from kgkd.models.preprocess import ImagePreprocess

DIGIT_LABELS: tuple[str, ...] = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class CCExamSpec:
    """How one ccexam net is built, fed and tapped for features."""

    model_class: str
    weights: str
    feature_layers: dict[str, str]


#: Feature taps: "conv" = last conv block output, "pooled" = hidden layer of the MLP head (after ReLU).
CCEXAM_NETS: dict[str, CCExamSpec] = {
    "mnist": CCExamSpec(
        "MNISTNet", "weights/mnist.pth", {"conv": "features", "pooled": "classifier.1"}
    ),
    "usps": CCExamSpec(
        "USPSNet", "weights/usps.pth", {"conv": "features", "pooled": "classifier.2"}
    ),
    "svhn": CCExamSpec(
        "SVHNNet", "weights/svhn.pth", {"conv": "features", "pooled": "classifier.2"}
    ),
}


def ccexam_preprocess(domain: str) -> ImagePreprocess:
    """The input conversion the ccexam ``domain`` net was trained with (size, channels, mean/std)."""
    from ccexam.constants import DATASET_STATS

    stats = DATASET_STATS[domain]
    channels = 1 if stats["grayscale"] else 3
    return ImagePreprocess(
        size=int(stats["image_size"]),
        channels=channels,
        mean=tuple(float(m) for m in stats["mean"]),
        std=tuple(float(s) for s in stats["std"]),
    )


def load_ccexam_net(domain: str) -> nn.Module:
    """Build the ccexam network for ``domain`` and load its packaged weights (``weights_only=True``)."""
    if domain not in CCEXAM_NETS:
        raise ModelError(
            f"ccexam has no pretrained net for '{domain}'; choose one of {sorted(CCEXAM_NETS)} "
            f"or train a teacher with `kgkd teachers train --domain {domain}`"
        )
    from ccexam import models as ccexam_models

    spec = CCEXAM_NETS[domain]
    weights = Path(str(resources.files("ccexam").joinpath(spec.weights)))
    if not weights.is_file():
        raise CheckpointError(
            f"ccexam weights {weights} are missing; reinstall with `pip install ccexam==1.0.0`"
        )
    net: nn.Module = getattr(ccexam_models, spec.model_class)(
        input_size=ccexam_preprocess(domain).size
    )
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except (RuntimeError, OSError, EOFError) as exc:
        raise CheckpointError(
            f"ccexam weights {weights} cannot be loaded ({exc}); reinstall ccexam==1.0.0"
        ) from None
    return net.eval()


def load_ccexam_teacher(domain: str, name: str | None = None) -> ModuleTeacher:
    """The ccexam ``"mnist"``, ``"usps"`` or ``"svhn"`` net as a teacher over digits 0..9.

    The teacher reads ``batch["pixels"]`` ([B,1,H,W] in 0..1, any H/W) and exposes features
    ``"conv"`` ([B,C,h,w]) and ``"pooled"`` ([B,D]).
    """
    net = load_ccexam_net(domain)
    prep = ccexam_preprocess(domain)
    teacher = ModuleTeacher(
        net,
        name=name or f"teacher_{domain}",
        label_names=DIGIT_LABELS,
        feature_layers=CCEXAM_NETS[domain].feature_layers,
        preprocess=prep,
        modality="image",
        preprocess_config={"source": f"ccexam==1.0.0:{domain}", **prep.to_dict()},
    )
    teacher.requires_grad_(False)
    return teacher
