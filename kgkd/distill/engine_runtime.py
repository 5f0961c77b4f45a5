"""Device placement and mixed precision for the distillation engine.

Which autocast dtype ``EngineConfig.amp`` means on a device, how frozen modules
(teachers, weightings) are placed, and how batches and teacher outputs are moved
to the device / to fp32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from kgkd.errors import ConfigError


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``config.amp`` on ``device``.

    CUDA: ``auto`` → bf16 where supported, else fp16; ``bf16`` / ``fp16`` as asked.
    CPU: ``auto`` and ``off`` run fp32 (CPU autocast rarely pays off for small models);
    ``bf16`` runs CPU bf16 autocast; ``fp16`` is refused with a ConfigError, because
    fp16 training needs a CUDA gradient scaler.
    """
    if amp == "off":
        return None
    if device.type == "cuda":
        if amp == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if amp == "bf16" else torch.float16
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        raise ConfigError(
            f"engine config amp='fp16' needs a CUDA device but this run is on {device.type}; "
            "use amp='bf16' (CPU bf16 autocast) or amp='off' on CPU"
        )
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    """``torch.autocast`` at ``dtype`` on ``device``; a no-op context when ``dtype`` is None."""
    return torch.autocast(
        device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None
    )


def frozen(module: nn.Module | None, device: torch.device) -> Any:
    """Move a teacher/weighting to ``device``, eval mode, no gradients."""
    if module is None:
        return None
    module.to(device).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch with every tensor on ``device`` (other values unchanged)."""
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()
    }


def as_float(out: Any) -> Any:
    """Teacher output with fp32 logits/features (caches may store fp16)."""
    logits = out.logits.float()
    features = {
        k: v.float() if v.is_floating_point() else v for k, v in (out.features or {}).items()
    }
    if dataclasses.is_dataclass(out):
        return dataclasses.replace(out, logits=logits, features=features)
    return type(out)(logits, features)
