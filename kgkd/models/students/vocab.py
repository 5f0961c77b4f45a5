"""Vocabulary pruning shared by the text students: which word pieces to keep, id → row maps,
and a WordPiece tokenizer rewritten to the kept pieces.

A pruned student keeps embedding rows only for the word pieces its domains use. It still
reads the teachers' (MiniLM) ``input_ids`` through a ``token_map`` (full id → row, unknown →
``[UNK]``), and :func:`pruned_tokenizer` writes a tokenizer whose ids *are* the rows, so an
exported model needs no map. WordPiece matches greedily longest-first, so on text whose
full tokenization uses kept pieces only, the pruned tokenizer yields the same pieces.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kgkd.errors import ModelError


def build_vocab(
    texts: Iterable[str], tokenizer: Any, min_count: int = 1, max_tokens: int | None = None
) -> list[int]:
    """Sorted tokenizer ids of the word pieces occurring ≥ ``min_count`` times in ``texts`` (+ specials).

    ``max_tokens`` keeps only the most frequent pieces (ties broken by id) so that the
    embedding table fits a parameter budget; special tokens are always kept.
    """
    counts: Counter[int] = Counter()
    texts = list(texts)
    for start in range(0, len(texts), 512):
        for ids in tokenizer(texts[start : start + 512], add_special_tokens=True)["input_ids"]:
            counts.update(ids)
    specials = {int(i) for i in tokenizer.all_special_ids}
    ranked = sorted(
        (i for i, c in counts.items() if c >= min_count and i not in specials),
        key=lambda i: (-counts[i], i),
    )
    if max_tokens is not None:
        if max_tokens <= len(specials):
            raise ModelError(
                f"max_tokens={max_tokens} leaves no room beyond the {len(specials)} special tokens; raise it"
            )
        ranked = ranked[: max_tokens - len(specials)]
    return sorted(set(ranked) | specials)


def token_rows(
    kept_token_ids: Sequence[int] | Tensor, full_vocab_size: int, unk_id: int, pad_id: int,
    expected: int | None = None,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``(kept ids sorted, token_map)``: ``token_map[full id]`` = its row, or ``[UNK]``'s row.

    Raises:
        ModelError: ids out of range, count not ``expected``, or ``[UNK]``/``[PAD]`` not kept.
    """
    ids = torch.as_tensor(
        list(kept_token_ids) if not isinstance(kept_token_ids, Tensor) else kept_token_ids
    )
    ids = ids.long().unique(sorted=True)
    if expected is not None and len(ids) != expected:
        raise ModelError(f"{len(ids)} distinct kept ids but config.num_tokens={expected}")
    if len(ids) == 0 or ids.min() < 0 or ids.max() >= full_vocab_size:
        raise ModelError(f"kept token ids must be non-empty and lie in 0..{full_vocab_size - 1}")
    rows = {int(t): r for r, t in enumerate(ids.tolist())}
    for special, label in ((unk_id, "unk_token_id"), (pad_id, "pad_token_id")):
        if special not in rows:
            raise ModelError(f"the kept token ids must include {label}={special}")
    token_map = torch.full((full_vocab_size,), rows[unk_id], dtype=torch.long)
    token_map[ids] = torch.arange(len(ids))
    return ids, token_map


def pruned_tokenizer(tokenizer: Any, kept_token_ids: Sequence[int] | Tensor, max_length: int) -> Any:
    """A BERT WordPiece tokenizer over the kept pieces only (id = row of the pruned table).

    Casing/accent settings are copied from ``tokenizer`` (the teachers' MiniLM tokenizer).
    """
    from transformers import BertTokenizer

    ids = [int(i) for i in (kept_token_ids.tolist() if isinstance(kept_token_ids, Tensor) else kept_token_ids)]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    options = {
        "do_lower_case": bool(getattr(tokenizer, "do_lower_case", True)),
        "tokenize_chinese_chars": bool(getattr(tokenizer, "tokenize_chinese_chars", True)),
        "strip_accents": getattr(tokenizer, "strip_accents", None),
    }
    with tempfile.TemporaryDirectory() as tmp:
        vocab = Path(tmp) / "vocab.txt"
        vocab.write_text("".join(f"{p}\n" for p in pieces), encoding="utf-8")
        out = BertTokenizer(str(vocab), model_max_length=max_length, **options)
    if len(out) != len(ids):
        raise ModelError(
            f"pruned tokenizer has {len(out)} entries for {len(ids)} kept pieces (duplicate pieces?)"
        )
    return out

