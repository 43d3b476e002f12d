"""Every cis enhancer-promoter pair within a distance (the library side of ``epcli candidates``).

Inputs are two BED files: enhancers (elements such as ENCODE cCREs or ATAC peaks) and
promoters, given either as promoter windows or, with ``tss``, as TSSs/genes with a strand from
which a window is placed around the TSS (BENGI's promoter windows: 1,500 bp upstream and
500 bp downstream, mirrored on the minus strand).

A pair's distance is ``|promoter midpoint - enhancer midpoint|`` with midpoint
``(start + end) // 2`` (:func:`epcli.core.pairs.midpoint`), as everywhere in epcli. A pair is
written when ``min_distance <= distance <= max_distance``.

Memory: the promoters are held in memory (genes and TSSs are few); the enhancers are read one
chromosome at a time when the file lists each chromosome's elements together (any sorted BED
does), so memory is O(elements of one chromosome) and never grows with the number of pairs.
An enhancer file whose chromosomes are interleaved is read whole (O(enhancers)).

The enhancer file is read twice: a first pass validates every line and counts the pairs, so
that bad input is reported before any output is written, and the second pass writes the pairs.
Enhancers read from stdin are first copied to a temporary file.

Output order: chromosomes in the order they first appear in the enhancer file; within a
chromosome, pairs sorted by enhancer (start, end, input line) then promoter (start, end,
input line).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from epcli.core import schema
from epcli.core.errors import EpcliError, UsageError
from epcli.io.bedpe import format_header, write_bedpe_rows
from epcli.io.elements import (
    DEFAULT_DOWNSTREAM,
    DEFAULT_UPSTREAM,
    BedReader,
    Elements,
    NotGrouped,
    tss_window,
)
from epcli.io.files import STDIO, open_text_input

#: Default maximum distance (bp) between the enhancer and promoter midpoints.
DEFAULT_MAX_DISTANCE = 1_000_000
#: Pairs built and written per block (bounds the memory of the pair arrays).
PAIR_BLOCK = 50_000


@dataclass
class _PromoterIndex:
    """One chromosome's promoters sorted by midpoint, with their rank in position order."""

    elements: Elements
    by_mid: np.ndarray  # (n,) element index, sorted by midpoint
    mid_sorted: np.ndarray  # (n,) midpoints in that order
    pos_rank: np.ndarray  # (n,) rank in (start, end, line) order of by_mid[i]

    @classmethod
    def build(cls, el: Elements) -> _PromoterIndex:
        mid = el.mid
        by_mid = np.argsort(mid, kind="stable")
        rank = np.empty(el.n, np.int64)
        rank[el.position_order()] = np.arange(el.n)
        return cls(el, by_mid, mid[by_mid], rank[by_mid])


def _ranges(
    em: np.ndarray, mids: np.ndarray, max_d: int, min_d: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each enhancer midpoint, the promoter range ``[lo, hi)`` (in midpoint order) within
    ``max_d`` and the number of pairs in it that are at least ``min_d`` away.

    Returns
    -------
    lo, hi, n : np.ndarray, each shape (len(em),), int64
    """
    lo = np.searchsorted(mids, em - max_d, side="left")
    hi = np.searchsorted(mids, em + max_d, side="right")
    n = hi - lo
    if min_d > 0:
        # distance < min_d  <=>  em - min_d < pm < em + min_d
        a = np.searchsorted(mids, em - min_d, side="right")
        b = np.searchsorted(mids, em + min_d, side="left")
        n = n - np.maximum(b - a, 0)
    return lo.astype(np.int64), hi.astype(np.int64), n.astype(np.int64)


@dataclass
class CandidateStats:
    """What the first pass found.

    Attributes
    ----------
    n_pairs : int
        Pairs that will be written.
    n_enhancers, n_promoters : int
    pairs_per_chrom : dict of str to int
        In output order (chromosomes with enhancers and promoters).
    enhancer_chroms, promoter_chroms : list of str
    grouped : bool
        Whether the enhancer file lists each chromosome's elements together (memory
        O(one chromosome)); else it is read whole.
    n_clipped : int
        Promoter windows clipped at a contig end (``tss`` only).
    """

    n_pairs: int = 0
    n_enhancers: int = 0
    n_promoters: int = 0
    pairs_per_chrom: dict[str, int] = field(default_factory=dict)
    enhancer_chroms: list[str] = field(default_factory=list)
    promoter_chroms: list[str] = field(default_factory=list)
    grouped: bool = True
    n_clipped: int = 0


class Candidates:
    """Candidate pairs of two BED files: validated and counted on construction, written by
    :meth:`write`.

    Use as a context manager (it may hold a temporary copy of enhancers read from stdin).

    Parameters
    ----------
    enhancers, promoters : path-like
        BED files (plain, gzipped, or ``-`` for one of them).
    max_distance : int
        Largest distance written (bp, inclusive).
    min_distance : int
        Smallest distance written (bp, inclusive).
    tss : (int, int), optional
        ``(upstream, downstream)``: promoters are TSSs/genes with a strand; windows are placed
        with :func:`tss_window`.
    lengths : dict of str to int, optional
        Contig lengths (from ``--genome`` or a chromosome-sizes file): names and ends are
        checked, TSS windows clipped.
    genome_name : str
        How messages name the genome.

    Raises
    ------
    UsageError
        Bad distances; both inputs on stdin.
    EpcliError
        The first bad line of either file (file:line), an empty file, or no chromosome in
        common.
    """

    def __init__(
        self,
        enhancers: str | os.PathLike,
        promoters: str | os.PathLike,
        *,
        max_distance: int = DEFAULT_MAX_DISTANCE,
        min_distance: int = 0,
        tss: tuple[int, int] | None = None,
        lengths: dict[str, int] | None = None,
        genome_name: str = "the genome",
    ) -> None:
        if max_distance < 0 or min_distance < 0:
            raise UsageError("distances must be >= 0")
        if min_distance > max_distance:
            raise UsageError(
                f"--min-distance {min_distance} is above --max-distance {max_distance}"
            )
        if tss is not None and (tss[0] < 0 or tss[1] < 1):
            raise UsageError("--upstream must be >= 0 and --downstream >= 1")
        if str(enhancers) == STDIO and str(promoters) == STDIO:
            raise UsageError("ENHANCERS and PROMOTERS cannot both read stdin")
        self.max_distance = int(max_distance)
        self.min_distance = int(min_distance)
        self._spool: Path | None = None
        self.enh_reader = BedReader(enhancers, "enhancers", lengths, genome_name)
        self.pro_reader = BedReader(promoters, "promoters", lengths, genome_name, tss)
        self.promoters: dict[str, _PromoterIndex] = {}
        try:
            self._read_promoters()
            if str(enhancers) == STDIO:
                self._spool_stdin()
            self.stats = self._count()
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- set-up
    def _read_promoters(self) -> None:
        for el in self.pro_reader.blocks(grouped=False):
            self.promoters[el.chrom] = _PromoterIndex.build(el)
        if not self.promoters:
            raise EpcliError(
                "no promoters found (the file is empty or holds only comments)",
                path=self.pro_reader.where,
            )

    def _spool_stdin(self) -> None:
        fd, name = tempfile.mkstemp(prefix="epcli-enhancers-", suffix=".bed")
        self._spool = Path(name)
        with open_text_input(STDIO) as src, os.fdopen(fd, "w", encoding="utf-8") as dst:
            dst.writelines(src)  # line by line: bounded memory, strict UTF-8 and gzip checks
        where = self.enh_reader.where
        self.enh_reader.path = self._spool
        self.enh_reader.where = where  # messages still name <stdin>

    def _enhancer_blocks(self, grouped: bool) -> Iterator[Elements]:
        return self.enh_reader.blocks(grouped)

    def _count(self) -> CandidateStats:
        stats = CandidateStats(
            n_promoters=sum(p.elements.n for p in self.promoters.values()),
            promoter_chroms=list(self.promoters),
            n_clipped=self.pro_reader.n_clipped,
        )
        try:
            self._count_blocks(stats, grouped=True)
        except NotGrouped:
            stats = CandidateStats(
                n_promoters=stats.n_promoters,
                promoter_chroms=stats.promoter_chroms,
                n_clipped=stats.n_clipped,
                grouped=False,
            )
            self._count_blocks(stats, grouped=False)
        if stats.n_enhancers == 0:
            raise EpcliError(
                "no enhancers found (the file is empty or holds only comments)",
                path=self.enh_reader.where,
            )
        if not set(stats.enhancer_chroms) & set(stats.promoter_chroms):
            from epcli.io.genome import naming_style

            raise EpcliError(
                f"{self.enh_reader.where} and {self.pro_reader.where} share no chromosome "
                f"(enhancers: {naming_style(stats.enhancer_chroms)}, e.g. "
                f"{stats.enhancer_chroms[0]!r}; promoters: "
                f"{naming_style(stats.promoter_chroms)}, e.g. {stats.promoter_chroms[0]!r})",
                hint="use one genome build and one chromosome naming for both files",
            )
        return stats

    def _count_blocks(self, stats: CandidateStats, grouped: bool) -> None:
        for el in self._enhancer_blocks(grouped):
            stats.n_enhancers += el.n
            stats.enhancer_chroms.append(el.chrom)
            pro = self.promoters.get(el.chrom)
            if pro is None:
                continue
            _, _, n = _ranges(el.mid, pro.mid_sorted, self.max_distance, self.min_distance)
            k = int(n.sum())
            stats.pairs_per_chrom[el.chrom] = k
            stats.n_pairs += k

    def close(self) -> None:
        """Remove the temporary copy of stdin, if any."""
        if self._spool is not None:
            self._spool.unlink(missing_ok=True)
            self._spool = None

    def __enter__(self) -> Candidates:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- pairs
    def chrom_pairs(self, el: Elements, block_pairs: int = PAIR_BLOCK) -> Iterator[pd.DataFrame]:
        """The pairs of one chromosome's enhancers, in blocks of about ``block_pairs`` rows.

        Yields
        ------
        pandas.DataFrame
            :data:`epcli.core.schema.CANDIDATES_COLUMNS`, sorted by enhancer (start, end, line)
            then promoter (start, end, line).
        """
        pro = self.promoters.get(el.chrom)
        if pro is None or el.n == 0:
            return
        order = el.position_order()
        em = el.mid[order]
        lo, _, n_in = _ranges(em, pro.mid_sorted, self.max_distance, self.min_distance)
        _, hi, _ = _ranges(em, pro.mid_sorted, self.max_distance, 0)
        span = hi - lo
        # split the enhancers into blocks of about block_pairs candidate pairs
        cum = np.cumsum(span)
        cuts = np.searchsorted(cum, np.arange(block_pairs, cum[-1] + 1, block_pairs), "left")
        bounds = np.unique(np.r_[0, np.minimum(cuts + 1, el.n), el.n])
        p_el = pro.elements
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if n_in[a:b].sum() == 0:
                continue
            reps = span[a:b]
            e_pos = np.repeat(np.arange(a, b), reps)  # position in `order`
            first = np.repeat(np.cumsum(reps) - reps, reps)
            p_sorted = lo[e_pos] + (np.arange(e_pos.shape[0]) - first)
            dist = np.abs(pro.mid_sorted[p_sorted] - em[e_pos])
            if self.min_distance > 0:
                keep = dist >= self.min_distance
                e_pos, p_sorted, dist = e_pos[keep], p_sorted[keep], dist[keep]
            o = np.lexsort((pro.pos_rank[p_sorted], e_pos))
            e_i = order[e_pos[o]]
            p_i = pro.by_mid[p_sorted[o]]
            dist = dist[o]
            sep = schema.PAIR_NAME_SEP
            chrom = np.full(e_i.shape[0], el.chrom, dtype=object)
            yield pd.DataFrame(
                {
                    "chrom1": chrom,
                    "start1": el.start[e_i],
                    "end1": el.end[e_i],
                    "chrom2": chrom,
                    "start2": p_el.start[p_i],
                    "end2": p_el.end[p_i],
                    "name": [
                        f"{x}{sep}{y}"
                        for x, y in zip(el.name[e_i].tolist(), p_el.name[p_i].tolist(), strict=True)
                    ],
                    "score": schema.MISSING,
                    "strand1": el.strand[e_i],
                    "strand2": p_el.strand[p_i],
                    schema.COL_DISTANCE: dist,
                }
            )

    def iter_pairs(self, block_pairs: int = PAIR_BLOCK) -> Iterator[pd.DataFrame]:
        """Every pair, in output order, in blocks (see :meth:`chrom_pairs`)."""
        for el in self._enhancer_blocks(self.stats.grouped):
            yield from self.chrom_pairs(el, block_pairs)

    def write(
        self,
        out: IO[str],
        *,
        header: bool = True,
        progress: Callable[[int], None] | None = None,
        block_pairs: int = PAIR_BLOCK,
    ) -> int:
        """Write every pair as BEDPE (:data:`epcli.core.schema.CANDIDATES_COLUMNS`).

        Parameters
        ----------
        out : text stream
        header : bool
            Write the ``#chrom1 ...`` header line first.
        progress : callable, optional
            Called with the number of pairs written so far.
        block_pairs : int
            Pairs per block (memory of the pair arrays).

        Returns
        -------
        int
            Pairs written (equals ``stats.n_pairs``).
        """
        columns = list(schema.CANDIDATES_COLUMNS)
        if header:
            out.write(format_header(columns))
        n = 0
        for frame in self.iter_pairs(block_pairs):
            write_bedpe_rows(out, frame, columns, header=False)
            n += len(frame)
            if progress is not None:
                progress(n)
        if n != self.stats.n_pairs:  # pragma: no cover - both passes use _ranges
            raise AssertionError(f"wrote {n} pairs, counted {self.stats.n_pairs}")
        return n


__all__ = [
    "DEFAULT_DOWNSTREAM",
    "DEFAULT_MAX_DISTANCE",
    "DEFAULT_UPSTREAM",
    "BedReader",
    "CandidateStats",
    "Candidates",
    "Elements",
    "tss_window",
]
