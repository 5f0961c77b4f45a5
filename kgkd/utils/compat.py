"""Compatibility guards for the installed stack (a torchvision built for another torch).

transformers imports torchvision (if installed) while loading any model class, although
text models never use it. A torchvision wheel built for another torch build fails at
import ("operator torchvision::nms does not exist") and would take every Hugging Face model
down with it. PyPI only carries CUDA builds of torchvision, so next to a CPU-only torch
(``torch==2.13.0+cpu``) the one ``ccexam`` pulls in is always broken. ``import kgkd`` runs
:func:`guard_torchvision`: a cheap check (no torch import) that hides such a torchvision, so
a user's own ``from transformers import BertForSequenceClassification`` works after it.
"""

from __future__ import annotations

import importlib.util
import mmap
import sys
from pathlib import Path
from typing import Any

from kgkd.utils.logging import get_logger

log = get_logger(__name__)


def hide_broken_torchvision() -> None:
    """Make an installed-but-unimportable torchvision look absent to transformers (no-op otherwise)."""
    if (
        sys.modules.get("torchvision", False) is not False
    ):  # already imported fine, or already hidden
        return
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "unusable"
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules["torchvision"] = None  # type: ignore[assignment]  # find_spec → None
        import_utils = sys.modules.get("transformers.utils.import_utils")
        cached = getattr(import_utils, "is_torchvision_available", None)
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()
        log.debug("torchvision is installed but cannot be imported; hiding it from transformers")


#: CUDA libraries a CUDA build of torchvision's C extension links against.
_CUDA_LIBS: tuple[str, ...] = ("libtorch_cuda.so", "libc10_cuda.so")


def torchvision_mismatch() -> str | None:
    """Why the installed torchvision cannot load next to the installed torch, or None.

    Reads torchvision's C extension for the CUDA libraries it needs and looks for them in
    torch's ``lib`` folder — files only: neither torch nor torchvision is imported.
    """
    try:
        tv = importlib.util.find_spec("torchvision")
        torch_spec = importlib.util.find_spec("torch")
    except (ValueError, ImportError):
        return None
    if tv is None or torch_spec is None or not tv.origin or not torch_spec.origin:
        return None
    ext = next(iter(sorted(Path(tv.origin).parent.glob("_C*.so"))), None)
    if ext is None:
        return None
    torch_lib = Path(torch_spec.origin).parent / "lib"
    try:
        with open(ext, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            missing = [lib for lib in _CUDA_LIBS if data.find(lib.encode()) != -1 and not (torch_lib / lib).exists()]
    except (OSError, ValueError):
        return None
    if not missing:
        return None
    return (
        f"torchvision ({ext.parent}) is a CUDA build that needs {', '.join(missing)}, which the installed "
        f"CPU-only torch ({torch_lib.parent}) does not have"
    )


def guard_torchvision() -> bool:
    """Hide a torchvision that cannot load with this torch (see :func:`torchvision_mismatch`).

    Called by ``import kgkd``; cheap (file reads only). Returns True when it hid one. After it,
    transformers treats torchvision as absent and text models import normally.
    """
    if "torchvision" in sys.modules:  # already imported fine, or already hidden
        return False
    reason = torchvision_mismatch()
    if reason is None:
        return False
    sys.modules["torchvision"] = None  # type: ignore[assignment]  # import → ModuleNotFoundError, find_spec → None
    import_utils = sys.modules.get("transformers.utils.import_utils")
    cached = getattr(import_utils, "is_torchvision_available", None)
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()
    log.debug("hiding torchvision from transformers: %s", reason)
    return True


def auto_sequence_classifier() -> Any:
    """``transformers.AutoModelForSequenceClassification``, importable even with a broken torchvision."""
    hide_broken_torchvision()
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification
