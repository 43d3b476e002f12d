"""Pair geometry: the only midpoint and distance code. An anchor's midpoint is
``(start + end) // 2`` (0-based half-open BED coordinates); a pair's distance is
``|promoter midpoint - enhancer midpoint|`` in bp, everywhere in epcli."""

from __future__ import annotations

import numpy as np
import pandas as pd


def midpoint(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Midpoint of intervals, ``(start + end) // 2``; shape (n,), int64."""
    return (np.asarray(start, dtype=np.int64) + np.asarray(end, dtype=np.int64)) // 2


def midpoints(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Enhancer and promoter midpoints, ``(start + end) // 2``, each shape (n,)."""
    return midpoint(df["start1"], df["end1"]), midpoint(df["start2"], df["end2"])


def pair_distance(df: pd.DataFrame) -> np.ndarray:
    """Distance between anchor midpoints in bp, shape (n,), int64."""
    e, p = midpoints(df)
    return np.abs(p - e)
