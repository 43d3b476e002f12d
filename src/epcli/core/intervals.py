"""The only interval-overlap code: half-open intervals, at least 1 bp in common."""

from __future__ import annotations

import numpy as np
import pandas as pd


def overlaps_any(query: pd.DataFrame, ref: pd.DataFrame) -> np.ndarray:
    """Whether each query interval overlaps (>= 1 bp) any reference interval.

    Parameters
    ----------
    query, ref : pandas.DataFrame
        Columns ``chrom``, ``start``, ``end`` (half-open).

    Returns
    -------
    np.ndarray, shape (len(query),), bool
    """
    out = np.zeros(len(query), dtype=bool)
    q_chrom = query["chrom"].astype(str).to_numpy(object)
    ref = ref.assign(chrom=ref["chrom"].astype(str))
    for chrom, r in ref.groupby("chrom", sort=False):
        rows = np.flatnonzero(q_chrom == chrom)
        if rows.size == 0:
            continue
        order = np.argsort(r["start"].to_numpy(np.int64), kind="stable")
        r_start = r["start"].to_numpy(np.int64)[order]
        r_end_max = np.maximum.accumulate(r["end"].to_numpy(np.int64)[order])
        q_start = query["start"].to_numpy(np.int64)[rows]
        q_end = query["end"].to_numpy(np.int64)[rows]
        k = np.searchsorted(r_start, q_end, side="left")  # reference rows starting before q_end
        hit = k > 0
        hit[hit] = r_end_max[k[hit] - 1] > q_start[hit]
        out[rows] = hit
    return out
