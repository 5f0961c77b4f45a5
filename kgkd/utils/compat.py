"""Compatibility guards for the installed stack (a torchvision built for another torch).

transformers imports torchvision (if installed) while loading any model class, although
text models never use it. A torchvision wheel built for another torch build fails at
import ("operator torchvision::nms does not exist") and would take every MiniLM teacher
down with it; :func:`auto_sequence_classifier` hides such a broken torchvision first.
"""

from __future__ import annotations

import sys
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


def auto_sequence_classifier() -> Any:
    """``transformers.AutoModelForSequenceClassification``, importable even with a broken torchvision."""
    hide_broken_torchvision()
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification
