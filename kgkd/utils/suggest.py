"""One did-you-mean for every "unknown name" error: aliases first, then edit distance.

``did_you_mean("learning_rat", ["lr", "epochs"], {"learning_rate": "lr"})`` is ``"lr"``:
the misspelt word is matched against the valid names *and* their known aliases
(spellings other libraries use), case- and separator-insensitively, by the better of
difflib's ratio and an edit-distance similarity that counts a swap of two neighbouring
letters as one edit (``epohcs`` → ``epochs``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

__all__ = ["did_you_mean", "edit_distance", "suggestion"]


def _norm(text: str) -> str:
    return str(text).strip().lower().replace("-", "_").replace(" ", "_")


def edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps."""
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def _similarity(a: str, b: str) -> float:
    """0..1: the best of difflib's ratio, edit-distance similarity and a whole-word prefix match."""
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    edits = 1.0 - edit_distance(a, b) / max(len(a), len(b), 1)
    short, long = sorted((a, b), key=len)
    # warmup → warmup_steps; a bit below one edit in ten so digit-fats → digit-fast, not digit
    prefix = 0.85 if len(short) >= 3 and long.startswith(short) else 0.0
    return max(ratio, edits, prefix)


def did_you_mean(
    word: object,
    choices: Iterable[object],
    aliases: Mapping[str, str] | None = None,
    cutoff: float = 0.6,
) -> str | None:
    """The valid name closest to ``word``, or None when nothing is close enough.

    Args:
        choices: the valid names.
        aliases: other spellings → the valid name they mean (``{"learning_rate": "lr"}``).
        cutoff: the least similarity (0..1) a suggestion needs.
    """
    names = list(dict.fromkeys(str(c) for c in choices))
    if not names:
        return None
    target = _norm(str(word))
    candidates: dict[str, str] = {}
    for n in names:
        candidates.setdefault(_norm(n), n)
    for alias, name in (aliases or {}).items():
        if str(name) in names:
            candidates.setdefault(_norm(alias), str(name))
    if target in candidates:
        return candidates[target]
    scored = [(_similarity(target, key), -len(key), name) for key, name in candidates.items()]
    score, _, best = max(scored, key=lambda t: t[:2])  # ties: the shorter name (temp → temperature)
    return best if score >= cutoff else None


def suggestion(
    word: object,
    choices: Iterable[object],
    aliases: Mapping[str, str] | None = None,
    cutoff: float = 0.6,
    prefix: str = "",
) -> str:
    """``" Did you mean 'x'?"`` for an error message, or ``""`` when nothing is close."""
    close = did_you_mean(word, choices, aliases, cutoff)
    return f" Did you mean '{prefix}{close}'?" if close is not None else ""
