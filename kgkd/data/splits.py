"""Fixed, seeded, stratified train/val/test splits.

Every shipped domain is split once, at build time, with the same rule: per class, shuffle
the sample positions with ``numpy.random.default_rng(seed)`` and cut 60/20/20. The split
is written into the data file, so loaders never re-split and every run sees the same data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kgkd.errors import DataError

SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.6, 0.2, 0.2)


def check_split(split: str) -> str:
    """Return ``split`` if it is one of train/val/test, else raise a DataError."""
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}'; use one of {list(SPLITS)}")
    return split


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> np.ndarray:
    """Assign each sample to a split, keeping the class balance in every split.

    Args:
        labels: class index per sample.
        fractions: train/val/test shares (must sum to 1).
        seed: seed of the shuffle; the same labels and seed always give the same split.

    Returns:
        An array of split names (``"train"``/``"val"``/``"test"``), one per sample.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise DataError(
            f"split fractions {list(fractions)} must be three non-negative shares summing to 1"
        )
    y = np.asarray(labels)
    out = np.empty(len(y), dtype=object)
    rng = np.random.default_rng(seed)
    for cls in np.unique(y):
        pos = rng.permutation(np.flatnonzero(y == cls))
        n_train = round(fractions[0] * len(pos))
        n_val = round(fractions[1] * len(pos))
        out[pos[:n_train]] = "train"
        out[pos[n_train : n_train + n_val]] = "val"
        out[pos[n_train + n_val :]] = "test"
    return out


def stratified_subset(labels: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of a class-balanced subset of ``limit`` samples (seeded).

    Each class keeps its share of ``limit`` (largest remainders get the spare places), so a
    small ``limit`` still shows every class.
    """
    y = np.asarray(labels)
    if limit >= len(y):
        return np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    exact = counts / counts.sum() * limit
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: limit - int(take.sum())]:
        take[i] += 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c, k in zip(classes, take)
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.arange(0)
