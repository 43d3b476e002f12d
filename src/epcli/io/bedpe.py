"""Streaming BEDPE reader and writer.

BEDPE here is bedtools' column order, 0-based half-open:
``chrom1 start1 end1 chrom2 start2 end2 [name score strand1 strand2] [extra...]``.
Anchor 1 is the enhancer, anchor 2 the promoter. Extra columns are named by an optional
header line starting with ``#`` whose first field is ``chrom1``; the known extras are
``cell`` (cell line) and ``label`` (0/1; ``.``/``NA`` mean unknown). Without a header a file
has 6 or 10 columns. Blank lines, ``track``/``browser`` lines and other ``#`` lines are
skipped; CRLF line ends and gzip are handled by :func:`epcli.io.files.open_text_input`.

Every problem is reported with the file and line (:class:`epcli.core.errors.EpcliError`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

import numpy as np
import pandas as pd

from epcli.core import schema
from epcli.core.errors import EpcliError, EpcliWarning, UsageError
from epcli.io.files import display_name, open_text_input

#: Values of the ``label`` column read as "unknown" (-1).
UNKNOWN_LABELS = frozenset({".", "NA", "na", "NaN", "nan", "", "-1"})
#: Name of the source-line column added to every chunk.
LINE_COL = "_line"
#: Largest coordinate accepted (2**40, about 1.1e12 bp: beyond any genome, and far enough
#: from the int64 limit that midpoints and windows cannot overflow).
MAX_COORD = 2**40


@dataclass
class BedpeLayout:
    """The columns of one BEDPE input.

    Attributes
    ----------
    columns : list of str
        Names of the input's columns, in input order.
    has_header : bool
        Whether a ``#chrom1 ...`` header line named them.
    """

    columns: list[str]
    has_header: bool = False
    extras: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.extras = [c for c in self.columns if c not in schema.BEDPE_STANDARD]

    @property
    def output_columns(self) -> list[str]:
        """The ten standard columns, then the extra columns in input order."""
        return list(schema.BEDPE_STANDARD) + self.extras


def _parse_header(fields: list[str], where: str, line_no: int) -> list[str]:
    names = [f.strip() for f in fields]
    names[0] = names[0].lstrip("#").strip()
    names = [n for n in names if n != ""] if names[-1] == "" else names
    if [n.lower() for n in names[:6]] != list(schema.BEDPE_COORDS):
        raise EpcliError(
            "header must start with chrom1 start1 end1 chrom2 start2 end2",
            path=where,
            line=line_no,
            hint="fix the header or remove it (then 6 or 10 columns are expected)",
        )
    names[:6] = list(schema.BEDPE_COORDS)
    if "" in names:
        raise EpcliError(
            f"header column {names.index('') + 1} has no name",
            path=where,
            line=line_no,
            hint="name every column (two tabs in a row leave an empty name)",
        )
    if LINE_COL in names:
        raise EpcliError(
            f"header names a column {LINE_COL!r}, a name epcli keeps for itself",
            path=where,
            line=line_no,
            hint="rename that column",
        )
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise EpcliError(f"header names a column twice: {', '.join(dup)}", path=where, line=line_no)
    return names


def _split(line: str) -> list[str]:
    parts = line.split("\t")
    if len(parts) == 1 and " " in line.strip():
        parts = line.split()
    return parts


class _ChunkBuilder:
    """Accumulates validated rows column-wise and turns them into DataFrames."""

    def __init__(self, layout: BedpeLayout, cell: str | None) -> None:
        self.layout = layout
        self.cell = cell
        self.reset()

    def reset(self) -> None:
        self.cols: list[list] = [[] for _ in self.layout.columns]
        self.lines: list[int] = []

    def __len__(self) -> int:
        return len(self.lines)

    def frame(self) -> pd.DataFrame:
        data: dict[str, object] = {}
        for name, values in zip(self.layout.columns, self.cols, strict=True):
            if name in schema.BEDPE_INT_COLS:
                data[name] = np.asarray(values, dtype=np.int64)
            elif name == schema.COL_LABEL:
                data[name] = np.asarray(values, dtype=np.int8)
            else:
                data[name] = values
        n = len(self.lines)
        for name in schema.BEDPE_OPTIONAL:
            if name not in data:
                data[name] = [schema.MISSING] * n
        if self.cell is not None:
            data[schema.COL_CELL] = [self.cell] * n
        elif schema.COL_CELL not in data:
            data[schema.COL_CELL] = [schema.MISSING] * n
        if schema.COL_LABEL not in data:
            data[schema.COL_LABEL] = np.full(n, -1, dtype=np.int8)
        data[LINE_COL] = np.asarray(self.lines, dtype=np.int64)
        order = list(schema.BEDPE_STANDARD) + [
            c for c in data if c not in schema.BEDPE_STANDARD and c != LINE_COL
        ]
        return pd.DataFrame({c: data[c] for c in order + [LINE_COL]})


def _validate_row(parts: list[str], layout: BedpeLayout, where: str, line_no: int) -> list:
    cols = layout.columns
    if len(parts) != len(cols):
        if layout.has_header:
            expect = f"{len(cols)} columns as the header names"
            hint = "every line needs one field per header column, tab-separated"
        else:
            expect = "6 or 10 columns"
            hint = "add a '#chrom1 start1 end1 chrom2 start2 end2 ...' header to name extra columns"
        raise EpcliError(
            f"found {len(parts)} columns, expected {expect}", path=where, line=line_no, hint=hint
        )
    row: list = list(parts)
    for i in (1, 2, 4, 5):
        text = parts[i].strip()
        try:
            value = int(text)
        except ValueError:
            raise EpcliError(
                f"{cols[i]} is not an integer: {text!r}",
                path=where,
                line=line_no,
                hint="coordinates are whole numbers, 0-based",
            ) from None
        if value > MAX_COORD:
            raise EpcliError(
                f"{cols[i]} is too large: {text[:30]}{'...' if len(text) > 30 else ''}",
                path=where,
                line=line_no,
                hint=f"coordinates are base positions on a chromosome (at most {MAX_COORD:,})",
            )
        if value < 0:
            raise EpcliError(
                f"{cols[i]} is negative: {value}",
                path=where,
                line=line_no,
                hint="coordinates are 0-based and >= 0",
            )
        row[i] = value
    for s, e, anchor in ((1, 2, "enhancer (anchor 1)"), (4, 5, "promoter (anchor 2)")):
        if row[s] >= row[e]:
            raise EpcliError(
                f"{anchor} start {row[s]} is not below end {row[e]}",
                path=where,
                line=line_no,
                hint="BEDPE intervals are half-open: start < end",
            )
    row[0] = row[0].strip()
    row[3] = row[3].strip()
    if row[0] != row[3]:
        raise EpcliError(
            f"inter-chromosomal pair ({row[0]} vs {row[3]}): enhancer-promoter interactions "
            "are cis, both anchors must be on one chromosome",
            path=where,
            line=line_no,
            hint="drop trans pairs first, e.g. awk '$1==$4'",
        )
    if layout.label_index is not None:
        text = parts[layout.label_index].strip()
        if text in ("0", "1"):
            row[layout.label_index] = int(text)
        elif text in UNKNOWN_LABELS:
            row[layout.label_index] = -1
        else:
            raise EpcliError(
                f"label must be 0 or 1, found {text!r}",
                path=where,
                line=line_no,
                hint="use 1 for interacting, 0 for not, '.' for unknown",
            )
    return row


def check_cell_name(cell: str | None) -> None:
    """``--cell``: a non-empty name without whitespace (it becomes a BEDPE field)."""
    if cell is not None and (cell.strip() == "" or any(ch.isspace() for ch in cell)):
        raise UsageError(
            f"--cell must be a non-empty name without spaces or tabs, got {cell!r}",
            hint="e.g. --cell K562",
        )


def iter_bedpe_chunks(
    path: str | os.PathLike,
    *,
    cell: str | None = None,
    chunk_size: int = 100_000,
) -> Iterator[pd.DataFrame]:
    """Read a BEDPE file in chunks of validated rows.

    Parameters
    ----------
    path : str or path-like
        File, gzipped file, or ``-`` for stdin.
    cell : str, optional
        Cell line for every pair (overrides a ``cell`` column).
    chunk_size : int
        Rows per chunk; memory is bounded by it.

    Yields
    ------
    pandas.DataFrame
        ``chunk_size`` rows at most, with the ten standard columns (``.`` where the input
        had none), ``cell`` (``.`` if unknown), ``label`` (int8, -1 unknown), every other
        input column in input order, and ``_line`` (1-based source line). The frame's
        ``attrs["layout"]`` is the :class:`BedpeLayout` of the input.

    Raises
    ------
    EpcliError
        On the first bad line (file and line in the message), or when the file holds no pairs.
    """
    check_cell_name(cell)
    where = display_name(path)
    layout: BedpeLayout | None = None
    builder: _ChunkBuilder | None = None
    n_rows = 0
    n_promoter_first = 0
    with open_text_input(path) as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n")
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("#"):
                if layout is None:
                    fields = _split(stripped)
                    if fields and fields[0].lstrip("#").strip().lower() == "chrom1":
                        layout = _make_layout(_parse_header(fields, where, line_no), True)
                continue
            if stripped.startswith(("track", "browser")):
                continue
            parts = _split(line)
            if layout is None:
                if len(parts) == 6:
                    layout = _make_layout(list(schema.BEDPE_COORDS), False)
                elif len(parts) == 10:
                    layout = _make_layout(list(schema.BEDPE_STANDARD), False)
                else:
                    _validate_row(
                        parts, _make_layout(list(schema.BEDPE_COORDS), False), where, line_no
                    )
            if builder is None:
                builder = _ChunkBuilder(layout, cell)
            row = _validate_row(parts, layout, where, line_no)
            n_promoter_first += _looks_promoter_first(row)
            for col, value in zip(builder.cols, row, strict=True):
                col.append(value)
            builder.lines.append(line_no)
            if len(builder) >= chunk_size:
                n_rows += len(builder)
                yield _finish(builder, layout)
                builder.reset()
    if builder is not None and len(builder):
        n_rows += len(builder)
        yield _finish(builder, layout)
    if n_rows == 0:
        raise EpcliError(
            "no pairs found (the input is empty or holds only comments)",
            path=where,
            hint="give a BEDPE with one enhancer-promoter pair per line",
        )
    if n_rows >= 5 and n_promoter_first > n_rows / 2:
        warnings.warn(
            f"{where}: in {n_promoter_first} of {n_rows} pairs anchor 1 is a wide window "
            "(>= 1 kb, like a promoter) and anchor 2 at most half as wide: the anchors look "
            "swapped; epcli reads anchor 1 as the enhancer and anchor 2 as the promoter",
            EpcliWarning,
            stacklevel=2,
        )


def _looks_promoter_first(row: list) -> bool:
    """Anchor 1 looks like a promoter window and anchor 2 like a narrow element."""
    w1, w2 = row[2] - row[1], row[5] - row[4]
    return w1 >= 1000 and 2 * w2 <= w1


def _make_layout(columns: list[str], has_header: bool) -> BedpeLayout:
    layout = BedpeLayout(columns, has_header)
    layout.label_index = (  # type: ignore[attr-defined]
        columns.index(schema.COL_LABEL) if schema.COL_LABEL in columns else None
    )
    return layout


def _finish(builder: _ChunkBuilder, layout: BedpeLayout) -> pd.DataFrame:
    df = builder.frame()
    df.attrs["layout"] = layout
    return df


def read_bedpe(path: str | os.PathLike, *, cell: str | None = None) -> pd.DataFrame:
    """Read a whole BEDPE file into one frame (see :func:`iter_bedpe_chunks`)."""
    chunks = list(iter_bedpe_chunks(path, cell=cell))
    layout = chunks[0].attrs["layout"]
    df = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    df.attrs["layout"] = layout
    return df


def format_header(columns: Sequence[str]) -> str:
    """The ``#``-header line for ``columns`` (with newline)."""
    return "#" + "\t".join(columns) + "\n"


def write_bedpe_rows(
    fh: IO[str], df: pd.DataFrame, columns: Sequence[str], *, header: bool
) -> None:
    """Write ``df[columns]`` tab-separated, with a ``#`` header line when ``header``."""
    if header:
        fh.write(format_header(columns))
    cols: list[Iterable] = []
    for c in columns:
        s = df[c]
        kind = s.dtype.kind
        if kind == "f":  # Python floats: format() on them is 6x faster than on numpy's
            cols.append(["NA" if v != v else format(v, ".6g") for v in s.to_numpy().tolist()])
        elif kind in "iub":  # str() of Python ints/bools, as astype(str) gives, but faster
            cols.append(list(map(str, s.to_numpy().tolist())))
        elif kind == "O":
            cols.append([v if type(v) is str else str(v) for v in s.tolist()])
        else:
            cols.append(s.astype(str).tolist())
    fh.writelines("\t".join(r) + "\n" for r in zip(*cols, strict=True))
