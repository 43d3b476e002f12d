"""BED elements for ``epcli candidates``: enhancers (cCREs, peaks) and promoters, or TSSs/genes
with a strand from which BENGI's promoter window is placed; validated line by line, read one
chromosome at a time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from epcli.core.errors import EpcliError
from epcli.core.pairs import midpoint
from epcli.io.files import display_name, open_text_input
from epcli.io.genome import missing_chrom_error

#: BENGI's promoter window around a TSS: bp upstream and downstream.
DEFAULT_UPSTREAM = 1500


DEFAULT_DOWNSTREAM = 500


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


class ElementRows:
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


class NotGrouped(Exception):
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
            raises ``NotGrouped`` when a chromosome's lines are not contiguous. False: read
            the whole file, then yield the chromosomes in order of first appearance.
        """
        self.n_clipped = 0
        done: set[str] = set()
        current: ElementRows | None = None
        every: dict[str, ElementRows] = {}
        for line_no, parts in self.lines():
            chrom, start, end, name, strand = self._parse(parts, line_no)
            if grouped:
                if current is None or chrom != current.chrom:
                    if current is not None:
                        done.add(current.chrom)
                        yield current.elements()
                    if chrom in done:
                        raise NotGrouped(chrom)
                    current = ElementRows(chrom)
                rows = current
            else:
                rows = every.get(chrom)
                if rows is None:
                    rows = every[chrom] = ElementRows(chrom)
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
