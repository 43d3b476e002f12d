"""Seeded sampling rules shared by training, adaptation and the model's warm start."""

from __future__ import annotations

import numpy as np


def stratified_pick(
    rng: np.random.Generator, pos: np.ndarray, neg: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """A stratified sample of ``k`` rows with both classes present.

    Parameters
    ----------
    rng : np.random.Generator
    pos, neg : np.ndarray
        Candidate rows of each class (each non-empty, ``len(pos) + len(neg) >= k >= 2``).
    k : int

    Returns
    -------
    (picked_pos, picked_neg) : np.ndarray
        ``round(k * prevalence)`` positives clipped to ``[1, k - 1]`` (and to what exists).
    """
    n_pos = round(k * pos.size / max(pos.size + neg.size, 1))
    n_pos = min(max(n_pos, 1), k - 1, pos.size)
    n_neg = k - n_pos
    if n_neg > neg.size:
        n_neg = neg.size
        n_pos = min(k - n_neg, pos.size)
    return (
        rng.choice(pos, size=n_pos, replace=False),
        rng.choice(neg, size=n_neg, replace=False),
    )
