"""Anchor windows from a genome: checks, the fetch of each unique window once, and in-memory
:class:`~epcli.core.arrays.PairData` for a validated BEDPE frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

from epcli.core import schema
from epcli.core.arrays import PairData
from epcli.core.errors import EpcliError, UsageError
from epcli.core.pairs import midpoints
from epcli.io.bedpe import LINE_COL
from epcli.io.genome import Genome, window_bounds
from epcli.io.hdf5 import index_anchors

#: (kind, BEDPE chrom/start/end columns) of the two anchors.
ANCHORS = (("enhancer", ("chrom1", "start1", "end1")), ("promoter", ("chrom2", "start2", "end2")))


def check_windows(enhancer_window: int, promoter_window: int) -> None:
    """Reject window sizes that cannot work (bad usage, exit 2)."""
    for name, w in (("--enhancer-window", enhancer_window), ("--promoter-window", promoter_window)):
        if w < 1 or w > 1_000_000:
            raise UsageError(f"{name} must be between 1 and 1,000,000 bp, got {w}")


def check_chunk_against_genome(df: pd.DataFrame, genome: Genome, where: str) -> None:
    """Every anchor's chromosome is in the genome and its interval inside the contig.

    Raises
    ------
    EpcliError
        Naming the first offending line of ``where``.
    """
    lines = df[LINE_COL].to_numpy()
    for chrom in pd.unique(df["chrom1"]):
        if chrom not in genome.lengths:
            first = int(lines[np.flatnonzero(df["chrom1"].to_numpy() == chrom)[0]])
            raise genome.missing_chrom_error(chrom, where, first)
    contig_len = df["chrom1"].map(genome.lengths).to_numpy(np.int64)
    for kind, (_, s, e) in ANCHORS:
        bad = np.flatnonzero(df[e].to_numpy() > contig_len)
        if len(bad):
            i = bad[0]
            raise EpcliError(
                f"{kind} {df['chrom1'].iat[i]}:{df[s].iat[i]}-{df[e].iat[i]} runs past the end "
                f"of the contig ({contig_len[i]:,} bp in {genome.name})",
                path=where,
                line=int(lines[i]),
                hint="check that the pairs and the genome are the same build",
            )


def fetch_windows(
    genome: Genome, chrom: list[str], start: np.ndarray, end: np.ndarray, length: int
) -> tuple[np.ndarray, int]:
    """Encoded windows of ``length`` bp centred on each anchor.

    Returns
    -------
    seqs : np.ndarray, shape (n, length), uint8
    n_padded : int
        Windows that ran off a contig end and were padded with N.
    """
    ws, we = window_bounds(start, end, length)
    out = np.empty((len(chrom), length), dtype=np.uint8)
    n_padded = 0
    for i, (c, s, e) in enumerate(zip(chrom, ws.tolist(), we.tolist(), strict=True)):
        out[i], pad = genome.window(c, s, e)
        n_padded += pad > 0
    return out, n_padded


def pairdata_from_frame(
    df: pd.DataFrame,
    genome: Genome,
    *,
    enhancer_window: int,
    promoter_window: int,
    where: str,
    cells: list[str] | None = None,
) -> tuple[PairData, int]:
    """In-memory :class:`PairData` for a validated BEDPE frame (predict/adapt on BEDPE).

    Returns
    -------
    PairData
        Each unique anchor fetched once.
    int
        Number of windows padded with N.
    """
    check_chunk_against_genome(df, genome, where)
    windows = {"enhancer": enhancer_window, "promoter": promoter_window}
    rows: dict[str, np.ndarray] = {}
    seqs: dict[str, np.ndarray] = {}
    n_padded = 0
    for kind, (c, s, e) in ANCHORS:
        chrom = df[c].to_numpy()
        start, end = df[s].to_numpy(), df[e].to_numpy()
        rows[kind], new = index_anchors({}, chrom, start, end)
        sel = np.asarray(new, dtype=np.int64)
        seqs[kind], pad = fetch_windows(
            genome, chrom[sel].tolist(), start[sel], end[sel], windows[kind]
        )
        n_padded += pad
    cell_names = list(cells) if cells is not None else []
    cell_col = df[schema.COL_CELL].tolist()
    for c in cell_col:
        if c != schema.MISSING and c not in cell_names:
            cell_names.append(c)
    lookup = {c: i for i, c in enumerate(cell_names)}
    e_mid, p_mid = midpoints(df)
    data = PairData(
        enh_seqs=seqs["enhancer"],
        pro_seqs=seqs["promoter"],
        enh_idx=rows["enhancer"],
        pro_idx=rows["promoter"],
        distance=np.abs(p_mid - e_mid).astype(np.int64),
        cell_idx=np.array([lookup.get(c, -1) for c in cell_col], dtype=np.int64),
        label=df[schema.COL_LABEL].to_numpy(np.int8),
        chrom=df["chrom1"].to_numpy(dtype=object),
        enh_mid=e_mid.astype(np.int64),
        pro_mid=p_mid.astype(np.int64),
        cells=cell_names,
    )
    return data, n_padded
