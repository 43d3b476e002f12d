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
from epcli.core.pairs import midpoint
from epcli.io.bedpe import format_header, write_bedpe_rows
from epcli.io.files import STDIO, display_name, open_text_input
from epcli.io.genome import missing_chrom_error

#: Default maximum distance (bp) between the enhancer and promoter midpoints.
DEFAULT_MAX_DISTANCE = 1_000_000
#: BENGI's promoter window around a TSS: bp upstream and downstream.
DEFAULT_UPSTREAM = 1500
DEFAULT_DOWNSTREAM = 500
#: Pairs built and written per block (bounds the memory of the pair arrays).
PAIR_BLOCK = 50_000

_STRANDS = frozenset({"+", "-", "."})


@dataclass
class Elements:
    """The elements of one chromosome.

    Attributes
    ----------
    chrom : str
    start, end : np.ndarray, shape (n,), int64
        0-based half-open coordinates (for promoters with ``tss``: the placed window).
    name : np.ndarray, shape (n,), object
        Column 4, or ``chrom:start-end`` of the input interval when the BED has none (or ``.``).
    strand : np.ndarray, shape (n,), object
        Column 6, or ``.``.
    line : np.ndarray, shape (n,), int64
        1-based input line.
    """

    chrom: str
    start: np.ndarray
    end: np.ndarray
    name: np.ndarray
    strand: np.ndarray
    line: np.ndarray

    @property
    def n(self) -> int:
        """Number of elements."""
        return int(self.start.shape[0])

    @property
    def mid(self) -> np.ndarray:
        """Midpoints, shape (n,), int64."""
        return midpoint(self.start, self.end)

    def position_order(self) -> np.ndarray:
        """Indices sorting the elements by (start, end, line); shape (n,)."""
        return np.lexsort((self.line, self.end, self.start))


class _Rows:
    """Column lists of one chromosome's parsed BED lines."""

    def __init__(self, chrom: str) -> None:
        self.chrom = chrom
        self.start: list[int] = []
        self.end: list[int] = []
        self.name: list[str] = []
        self.strand: list[str] = []
        self.line: list[int] = []

    def __len__(self) -> int:
        return len(self.line)

    def elements(self) -> Elements:
        return Elements(
            chrom=self.chrom,
            start=np.asarray(self.start, dtype=np.int64),
            end=np.asarray(self.end, dtype=np.int64),
            name=np.asarray(self.name, dtype=object),
            strand=np.asarray(self.strand, dtype=object),
            line=np.asarray(self.line, dtype=np.int64),
        )


class _NotGrouped(Exception):
    """Internal: a chromosome's lines are not contiguous in the file."""


@dataclass
class BedReader:
    """Parses and validates a BED file of elements.

    Parameters
    ----------
    path : path-like
        BED file, gzipped BED or ``-``.
    role : str
        ``"enhancers"`` or ``"promoters"`` (for messages).
    lengths : dict of str to int, optional
        Contig lengths; when given, chromosome names and ends are checked against them.
    genome_name : str
        How messages name the genome.
    tss : (int, int), optional
        ``(upstream, downstream)``: each line is a TSS or gene with a strand in column 6,
        and the element is the window placed around its TSS (see :func:`tss_window`).
    """

    path: str | os.PathLike
    role: str
    lengths: dict[str, int] | None = None
    genome_name: str = "the genome"
    tss: tuple[int, int] | None = None
    n_clipped: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.where = display_name(self.path)

    def _fail(self, message: str, line: int, hint: str | None = None) -> EpcliError:
        return EpcliError(message, path=self.where, line=line, hint=hint)

    def _parse(self, parts: list[str], line_no: int) -> tuple[str, int, int, str, str]:
        if len(parts) < 3:
            raise self._fail(
                f"found {len(parts)} column(s), expected at least 3 (chrom start end)",
                line_no,
                "BED lines are tab-separated: chrom, start, end, then optional name, score, strand",
            )
        chrom = parts[0].strip()
        coords = []
        for i, col in ((1, "start"), (2, "end")):
            text = parts[i].strip()
            try:
                value = int(text)
            except ValueError:
                raise self._fail(
                    f"{col} is not an integer: {text!r}",
                    line_no,
                    "coordinates are whole numbers, 0-based; comment a header line with '#'",
                ) from None
            if value < 0:
                raise self._fail(f"{col} is negative: {value}", line_no, "BED is 0-based, >= 0")
            coords.append(value)
        start, end = coords
        if start >= end:
            raise self._fail(
                f"start {start} is not below end {end}",
                line_no,
                "BED intervals are half-open: start < end (a TSS is start=TSS, end=TSS+1)",
            )
        if self.lengths is not None:
            if chrom not in self.lengths:
                raise missing_chrom_error(
                    chrom, self.lengths, self.genome_name, self.where, line_no, what="elements"
                )
            if end > self.lengths[chrom]:
                raise self._fail(
                    f"end {end} is beyond the end of {chrom} ({self.lengths[chrom]} bp in "
                    f"{self.genome_name})",
                    line_no,
                    "use the genome build the elements were called on",
                )
        name = parts[3].strip() if len(parts) > 3 else ""
        if name in ("", "."):
            name = f"{chrom}:{start}-{end}"
        strand = parts[5].strip() if len(parts) > 5 else "."
        if strand not in _STRANDS:
            raise self._fail(f"strand (column 6) must be +, - or ., found {strand!r}", line_no)
        if self.tss is not None:
            if strand == ".":
                raise self._fail(
                    "--tss needs each gene's strand (+ or -) in column 6"
                    + ("" if len(parts) > 5 else f", but the line has {len(parts)} columns"),
                    line_no,
                    "give TSSs or genes as BED6 (chrom start end name score strand), or drop "
                    "--tss when the file holds promoter windows",
                )
            length = None if self.lengths is None else self.lengths[chrom]
            start, end, clipped = tss_window(start, end, strand, *self.tss, length=length)
            self.n_clipped += clipped
        return chrom, start, end, name, strand

    def lines(self) -> Iterator[tuple[int, list[str]]]:
        """Yield ``(line number, fields)`` of every data line."""
        with open_text_input(self.path) as fh:
            for line_no, raw in enumerate(fh, start=1):
                text = raw.rstrip("\r\n")
                stripped = text.strip()
                if not stripped or stripped.startswith(("#", "track", "browser")):
                    continue
                parts = text.split("\t")
                if len(parts) == 1:
                    parts = stripped.split()
                yield line_no, parts

    def blocks(self, grouped: bool) -> Iterator[Elements]:
        """Yield the elements one chromosome at a time.

        Parameters
        ----------
        grouped : bool
            True: yield each chromosome as soon as its lines end (memory O(one chromosome));
            raises ``_NotGrouped`` when a chromosome's lines are not contiguous. False: read
            the whole file, then yield the chromosomes in order of first appearance.
        """
        self.n_clipped = 0
        done: set[str] = set()
        current: _Rows | None = None
        every: dict[str, _Rows] = {}
        for line_no, parts in self.lines():
            chrom, start, end, name, strand = self._parse(parts, line_no)
            if grouped:
                if current is None or chrom != current.chrom:
                    if current is not None:
                        done.add(current.chrom)
                        yield current.elements()
                    if chrom in done:
                        raise _NotGrouped(chrom)
                    current = _Rows(chrom)
                rows = current
            else:
                rows = every.get(chrom)
                if rows is None:
                    rows = every[chrom] = _Rows(chrom)
            rows.start.append(start)
            rows.end.append(end)
            rows.name.append(name)
            rows.strand.append(strand)
            rows.line.append(line_no)
        if grouped and current is not None:
            yield current.elements()
        for rows in every.values():
            yield rows.elements()


def tss_window(
    start: int,
    end: int,
    strand: str,
    upstream: int = DEFAULT_UPSTREAM,
    downstream: int = DEFAULT_DOWNSTREAM,
    length: int | None = None,
) -> tuple[int, int, int]:
    """The promoter window around the TSS of a gene or TSS interval.

    The TSS is ``start`` on the plus strand and ``end - 1`` on the minus strand (so a 1-bp TSS
    interval and a whole gene give the same TSS). The window holds ``upstream`` bases upstream
    of the TSS, the TSS, and ``downstream - 1`` bases downstream, ``upstream + downstream`` bp
    in all: ``[tss - upstream, tss + downstream)`` on +, the mirror image
    ``[tss - downstream + 1, tss + upstream + 1)`` on -. With 1,500 / 500 this is BENGI's
    window exactly on the minus strand and 1 bp upstream of it on the plus strand (BENGI's own
    plus-strand windows are ``[tss - 1499, tss + 501)``).

    Parameters
    ----------
    start, end : int
        The input interval (0-based, half-open).
    strand : {"+", "-"}
    upstream, downstream : int
    length : int, optional
        Contig length; the window is clipped to ``[0, length)``.

    Returns
    -------
    (start, end, clipped) : (int, int, int)
        The window, and 1 when it was clipped at a contig end (else 0).
    """
    if strand == "+":
        tss = start
        ws, we = tss - upstream, tss + downstream
    else:
        tss = end - 1
        ws, we = tss - downstream + 1, tss + upstream + 1
    cs, ce = max(ws, 0), we if length is None else min(we, length)
    return cs, ce, int((cs, ce) != (ws, we))


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
        except _NotGrouped:
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
