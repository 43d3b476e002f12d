"""BEDPE + genome FASTA -> pair data (HDF5 on disk, or PairData in memory).

The BEDPE is streamed in chunks; each unique enhancer and promoter window is fetched and
encoded once, so memory grows with the number of unique anchors, not with pairs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from epcli import schema
from epcli.arrays import PairData
from epcli.bedpe import LINE_COL, iter_bedpe_chunks
from epcli.dataset import DatasetWriter, index_anchors
from epcli.errors import EpcliError, UsageError
from epcli.genome import DEFAULT_ENHANCER_WINDOW, DEFAULT_PROMOTER_WINDOW, Genome, window_bounds
from epcli.io import atomic_path, check_output_path, display_name

#: (kind, BEDPE chrom/start/end columns) of the two anchors.
ANCHORS = (("enhancer", ("chrom1", "start1", "end1")), ("promoter", ("chrom2", "start2", "end2")))


@dataclass
class PrepareSummary:
    """What a prepare run did."""

    n_pairs: int = 0
    n_enhancers: int = 0
    n_promoters: int = 0
    n_padded_windows: int = 0
    labels: dict[int, int] = field(default_factory=lambda: {1: 0, 0: 0, -1: 0})
    cells: dict[str, int] = field(default_factory=dict)

    def count(self, df: pd.DataFrame) -> None:
        """Add a chunk's pairs to the counts."""
        self.n_pairs += len(df)
        vals, counts = np.unique(df[schema.COL_LABEL].to_numpy(), return_counts=True)
        for v, c in zip(vals.tolist(), counts.tolist(), strict=True):
            self.labels[int(v)] += int(c)
        for cell, c in df[schema.COL_CELL].value_counts().items():
            self.cells[str(cell)] = self.cells.get(str(cell), 0) + int(c)


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


def prepare_hdf5(
    pairs: str | os.PathLike,
    genome_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    cell: str | None = None,
    enhancer_window: int = DEFAULT_ENHANCER_WINDOW,
    promoter_window: int = DEFAULT_PROMOTER_WINDOW,
    chunk_size: int = 50_000,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> PrepareSummary:
    """Write the HDF5 dataset for a BEDPE file (atomically; nothing is left on error).

    Parameters
    ----------
    pairs : path-like
        BEDPE (plain, gzip or ``-``).
    genome_path : path-like
        Genome FASTA.
    out : path-like
        Output ``.h5``; an existing file is replaced only with ``force``.
    cell : str, optional
        Cell line for every pair.
    enhancer_window, promoter_window : int
        Window lengths (bp) centred on the anchor midpoints.
    chunk_size : int
        Pairs read per chunk (bounds memory).
    progress : callable, optional
        Called with the number of pairs done after each chunk.
    """
    check_windows(enhancer_window, promoter_window)
    check_output_path(
        out,
        force,
        inputs=[pairs, genome_path, f"{genome_path}.fai"],
        what="HDF5 dataset",
        no_stdout="must be a seekable file, not a stream",
    )
    where = display_name(pairs)
    genome = Genome(genome_path)
    summary = PrepareSummary()
    windows = {"enhancer": enhancer_window, "promoter": promoter_window}
    with atomic_path(out) as tmp:
        writer: DatasetWriter | None = None
        try:
            for df in iter_bedpe_chunks(pairs, cell=cell, chunk_size=chunk_size):
                if writer is None:
                    layout = df.attrs["layout"]
                    extras = [
                        c for c in layout.extras if c not in (schema.COL_CELL, schema.COL_LABEL)
                    ]
                    writer = DatasetWriter(
                        tmp,
                        enhancer_window=enhancer_window,
                        promoter_window=promoter_window,
                        genome_name=genome.name,
                        genome_fingerprint=genome.fingerprint,
                        extra_columns=extras,
                        source=Path(where).name,
                    )
                check_chunk_against_genome(df, genome, where)
                rows = {}
                for kind, (c, s, e) in ANCHORS:
                    chrom = df[c].to_numpy()
                    start, end = df[s].to_numpy(), df[e].to_numpy()
                    rows[kind], new = writer.anchor_rows(kind, chrom, start, end)
                    if new:
                        sel = np.asarray(new)
                        seqs, pad = fetch_windows(
                            genome, chrom[sel].tolist(), start[sel], end[sel], windows[kind]
                        )
                        summary.n_padded_windows += pad
                        writer.add_anchors(kind, chrom[sel], start[sel], end[sel], seqs)
                writer.add_pairs(df, rows["enhancer"], rows["promoter"])
                summary.count(df)
                if progress is not None:
                    progress(summary.n_pairs)
            assert writer is not None
            summary.n_enhancers = len(writer.anchor_index["enhancer"])
            summary.n_promoters = len(writer.anchor_index["promoter"])
            writer.close(n_padded_windows=summary.n_padded_windows)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            genome.close()
    return summary


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
    e_mid = (df["start1"].to_numpy() + df["end1"].to_numpy()) // 2
    p_mid = (df["start2"].to_numpy() + df["end2"].to_numpy()) // 2
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
