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

from epcli.core import schema
from epcli.io.bedpe import iter_bedpe_chunks
from epcli.io.files import atomic_path, check_output_path, display_name
from epcli.io.genome import DEFAULT_ENHANCER_WINDOW, DEFAULT_PROMOTER_WINDOW, Genome
from epcli.io.hdf5 import DatasetWriter
from epcli.io.windows import ANCHORS, check_chunk_against_genome, check_windows, fetch_windows


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
