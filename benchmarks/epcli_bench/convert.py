"""BENGI and TargetFinder pair tables -> epcli BEDPE, with TransEPI's strict folds.

Two public tables of labeled enhancer-promoter pairs (hg19) are read into frames with the
epcli BEDPE columns (:data:`epcli.core.schema.BEDPE_STANDARD`: anchor 1 = enhancer, anchor 2 =
promoter) plus the extra columns

``cell``
    Cell line, **as the source spells it**: BENGI says ``HeLa``, TargetFinder ``HeLa-S3``
    (same cell line). :func:`canonical_cell` maps both to ``HeLa``; :func:`strict_split`
    compares cells through it, so ``train_cells=("GM12878", "HeLa")`` works for both.
``label``
    1 = interacting, 0 = not (int8).
``source``
    ``bengi`` or ``targetfinder``.
``assay``
    Experiment behind the labels: for BENGI from the file name (``HiC``,
    ``CTCF-ChIAPET``, ``RNAPII-ChIAPET``); TargetFinder labels are Hi-C (``HiC``).
``fold``
    TransEPI strict fold of the chromosome (``fold0`` .. ``fold4``, see :data:`FOLDS`), or
    ``none`` for chromosomes in no fold (chrY, chrM, unplaced contigs).
``bengi_distance``
    BENGI only: the table's own distance column (float; BENGI measures from the enhancer
    midpoint to the TSS, not to the promoter window's midpoint as epcli does).

Both inputs are validated line by line; a bad line raises :class:`epcli.core.errors.EpcliError`
with the file and the 1-based line number.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from epcli.core import schema
from epcli.core.errors import EpcliError, UsageError
from epcli.core.intervals import overlaps_any
from epcli.io.bedpe import write_bedpe_rows
from epcli.io.files import display_name, open_text_input, open_text_output

#: TransEPI strict folds: the chromosomes each fold holds out.
FOLDS: dict[str, tuple[str, ...]] = {
    "fold0": ("chr1", "chr10", "chr15", "chr21"),
    "fold1": ("chr19", "chr3", "chr4", "chr7", "chrX"),
    "fold2": ("chr13", "chr17", "chr2", "chr22", "chr9"),
    "fold3": ("chr12", "chr14", "chr16", "chr18", "chr20"),
    "fold4": ("chr11", "chr5", "chr6", "chr8"),
}
#: Value of ``fold`` for chromosomes in no fold.
NO_FOLD = "none"
#: Chromosome -> fold name.
CHROM_FOLD: dict[str, str] = {c: f for f, chroms in FOLDS.items() for c in chroms}
#: TransEPI's strict protocol trains on these cells and tests on the others.
STRICT_TRAIN_CELLS: tuple[str, ...] = ("GM12878", "HeLa")
#: Source spellings of one cell line -> the name :func:`canonical_cell` gives.
CELL_ALIASES: dict[str, str] = {"HeLa-S3": "HeLa", "HELA-S3": "HeLa", "HeLaS3": "HeLa"}

#: Columns of a BENGI table as repackaged by TransEPI (no header).
BENGI_COLUMNS: tuple[str, ...] = (
    "label",
    "distance",
    "e_chrom",
    "e_start",
    "e_end",
    "e_name",
    "p_chrom",
    "p_start",
    "p_end",
    "p_name",
)
#: Header of a TargetFinder pair table.
TARGETFINDER_COLUMNS: tuple[str, ...] = (
    "cell_line",
    "label",
    "e_chrom",
    "e_start",
    "e_end",
    "p_chrom",
    "p_start",
    "p_end",
    "enhancer_name",
    "promoter_name",
)
#: Name of BENGI's own distance column in the output.
COL_BENGI_DISTANCE = "bengi_distance"

_BENGI_FILE = re.compile(r"^(?P<cell>[^.]+)\.(?P<assay>.+?)-Benchmark(?:\.v\d+)?\.tsv(?:\.gz)?$")
_INT = re.compile(r"^\s*[0-9]+\s*$")
#: Input columns whose fields are whitespace-stripped.
_STRIPPED = ("label", "e_chrom", "p_chrom", "cell_line")


# --------------------------------------------------------------------------- helpers
def fold_of(chrom: str) -> str:
    """TransEPI strict fold of a chromosome (``fold0`` .. ``fold4``) or ``none``."""
    return CHROM_FOLD.get(chrom, NO_FOLD)


def fold_name(fold: int | str) -> str:
    """Normalise a fold given as ``2``, ``"2"`` or ``"fold2"`` to ``"fold2"``.

    Raises
    ------
    UsageError
        For a fold that does not exist.
    """
    text = str(fold).strip()
    name = text if text.startswith("fold") else f"fold{text}"
    if name not in FOLDS:
        raise UsageError(
            f"unknown fold {fold!r}", hint="folds are " + ", ".join(FOLDS) + " (or 0..4)"
        )
    return name


def canonical_cell(cell: str) -> str:
    """One name per cell line across sources (``HeLa-S3`` -> ``HeLa``; others unchanged)."""
    return CELL_ALIASES.get(cell, cell)


def _read_columns(
    path: str | os.PathLike, columns: Sequence[str], header: bool
) -> tuple[dict[str, tuple[str, ...]], np.ndarray]:
    """Columns of a tab-separated table whose lines all have ``len(columns)`` fields.

    Parameters
    ----------
    path : path
        The table (gzip read transparently).
    columns : sequence of str
        Expected column names.
    header : bool
        Whether the first non-blank line is a header that must equal ``columns``.

    Returns
    -------
    cols : dict of str to tuple of str
        Each column's fields, each of length n_rows (text columns compared as words, see
        :data:`_STRIPPED`, are whitespace-stripped; integers parse with spaces around them).
    lines : np.ndarray, shape (n_rows,), int64
        1-based line number of each row in the file (blank lines are skipped but counted).
    """
    where = display_name(path)
    ncols = len(columns)
    rows: list[list[str]] = []
    lines: list[int] = []
    seen_header = not header
    with open_text_input(path) as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if not seen_header:
                if [p.strip() for p in parts] != list(columns):
                    raise EpcliError(
                        "header is not a TargetFinder pair table's: expected " + " ".join(columns),
                        path=where,
                        line=line_no,
                        hint="give a table with the columns listed in example_data/README.md",
                    )
                seen_header = True
                continue
            if len(parts) != ncols:
                raise EpcliError(
                    f"found {len(parts)} columns, expected {ncols}",
                    path=where,
                    line=line_no,
                    hint="columns are tab-separated; see example_data/README.md for the format",
                )
            rows.append(parts)
            lines.append(line_no)
    if not rows:
        raise EpcliError("no pairs found (the table is empty)", path=where)
    cols = dict(zip(columns, zip(*rows, strict=True), strict=True))
    for name in _STRIPPED:
        if name in cols:
            cols[name] = tuple(v.strip() for v in cols[name])
    return cols, np.asarray(lines, dtype=np.int64)


def _raise_first(
    bad: np.ndarray,
    lines: np.ndarray,
    where: str,
    message: str,
    value_of: Callable[[int], object],
    hint: str,
) -> None:
    """Raise for the first True of ``bad`` (shape (n,)), naming its line and value.

    ``message`` holds ``{value}``, filled with ``value_of(i)`` for the first bad row ``i``.
    """
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise EpcliError(
            message.format(value=value_of(i)), path=where, line=int(lines[i]), hint=hint
        )


def _ints(values: tuple[str, ...], name: str, lines: np.ndarray, where: str) -> np.ndarray:
    """Non-negative integer text -> int64 array, shape (n,)."""
    try:
        out = np.array(values, dtype=np.int64)
    except (ValueError, OverflowError):
        out = None
    if out is None or (out < 0).any():
        bad = np.array([_INT.fullmatch(v) is None for v in values])
        _raise_first(
            bad,
            lines,
            where,
            f"{name} is not a non-negative integer: {{value!r}}",
            lambda i: values[i],
            "coordinates are whole numbers, 0-based",
        )
    return out


def _labels(values: tuple[str, ...], lines: np.ndarray, where: str) -> np.ndarray:
    """``0``/``1`` text -> int8 array, shape (n,)."""
    arr = np.array(values, dtype=object)
    is1 = arr == "1"
    bad = ~(is1 | (arr == "0"))
    _raise_first(
        bad,
        lines,
        where,
        "label must be 0 or 1, found {value!r}",
        lambda i: values[i],
        "labels are 1 (interacting) or 0 (not)",
    )
    return is1.astype(np.int8)


def _coords(
    cols: dict[str, tuple[str, ...]], lines: np.ndarray, where: str
) -> dict[str, np.ndarray]:
    """The six BEDPE coordinate columns, checked: start < end, both anchors cis."""
    out: dict[str, np.ndarray] = {
        "chrom1": np.array(cols["e_chrom"], dtype=object),
        "chrom2": np.array(cols["p_chrom"], dtype=object),
    }
    for dst, src in (("start1", "e_start"), ("end1", "e_end"), ("start2", "p_start")):
        out[dst] = _ints(cols[src], src, lines, where)
    out["end2"] = _ints(cols["p_end"], "p_end", lines, where)
    for s, e, anchor in (("start1", "end1", "enhancer"), ("start2", "end2", "promoter")):
        _raise_first(
            out[s] >= out[e],
            lines,
            where,
            f"{anchor} start is not below its end ({{value}})",
            lambda i, s=s, e=e: f"{out[s][i]} >= {out[e][i]}",
            "intervals are half-open: start < end",
        )
    _raise_first(
        out["chrom1"] != out["chrom2"],
        lines,
        where,
        "inter-chromosomal pair ({value}): enhancer and promoter must share a chromosome",
        lambda i: f"{out['chrom1'][i]} vs {out['chrom2'][i]}",
        "drop trans pairs first",
    )
    return out


def _frame(
    coords: dict[str, np.ndarray],
    name: Sequence[str],
    strand2: Sequence[str],
    cell: Sequence[str],
    label: np.ndarray,
    source: str,
    assay: str,
) -> pd.DataFrame:
    """Assemble the output frame, shape (n, 15), columns in output order."""
    n = len(label)
    return pd.DataFrame(
        {
            "chrom1": coords["chrom1"],
            "start1": coords["start1"],
            "end1": coords["end1"],
            "chrom2": coords["chrom2"],
            "start2": coords["start2"],
            "end2": coords["end2"],
            "name": list(name),
            "score": [schema.MISSING] * n,
            "strand1": [schema.MISSING] * n,
            "strand2": list(strand2),
            "cell": list(cell),
            "label": label,
            "source": [source] * n,
            "assay": [assay] * n,
            "fold": [fold_of(c) for c in coords["chrom1"]],
        }
    )


# ---------------------------------------------------------------------------- readers
def read_bengi(path: str | os.PathLike) -> pd.DataFrame:
    """Read a BENGI table (TransEPI's repackaging, no header) as epcli BEDPE columns.

    Parameters
    ----------
    path : str or path-like
        ``<Cell>.<Assay>-Benchmark.v3.tsv[.gz]``: tab-separated label, distance, e_chrom,
        e_start, e_end, e_name (``chr:s-e|Cell|cCRE-id``), p_chrom, p_start, p_end, p_name
        (``chr:tss-tss+1|Cell|gene|transcript|strand``).

    Returns
    -------
    pandas.DataFrame, shape (n_pairs, 16)
        The ten standard BEDPE columns (``name`` = ``<cCRE id>|<gene id>``, ``strand2`` =
        the transcript's strand), then ``cell`` (from ``e_name``), ``label``, ``source``
        (``bengi``), ``assay`` (from the file name, ``.`` if it does not follow the pattern),
        ``fold`` and ``bengi_distance`` (float64). One row per table line, in file order.

    Raises
    ------
    EpcliError
        Wrong column count, non-integer coordinates, labels other than 0/1, malformed
        names, empty intervals or trans pairs, with the file and line.
    """
    where = display_name(path)
    cols, lines = _read_columns(path, BENGI_COLUMNS, header=False)
    label = _labels(cols["label"], lines, where)
    dist = pd.to_numeric(pd.Series(cols["distance"]), errors="coerce").to_numpy(np.float64)
    _raise_first(
        ~np.isfinite(dist),
        lines,
        where,
        "distance is not a number: {value!r}",
        lambda i: cols["distance"][i],
        "column 2 of a BENGI table is the enhancer-TSS distance",
    )
    coords = _coords(cols, lines, where)
    e_parts = [v.split("|") for v in cols["e_name"]]
    p_parts = [v.split("|") for v in cols["p_name"]]
    _raise_first(
        np.array([len(x) != 3 for x in e_parts]),
        lines,
        where,
        "e_name is not 'chr:start-end|cell|id': {value!r}",
        lambda i: cols["e_name"][i],
        "column 6 of a BENGI table names the enhancer",
    )
    _raise_first(
        np.array([len(x) != 5 for x in p_parts]),
        lines,
        where,
        "p_name is not 'chr:start-end|cell|gene|transcript|strand': {value!r}",
        lambda i: cols["p_name"][i],
        "column 10 of a BENGI table names the promoter",
    )
    m = _BENGI_FILE.match(Path(str(path)).name)
    df = _frame(
        coords,
        name=[f"{e[2].strip()}|{p[2].strip()}" for e, p in zip(e_parts, p_parts, strict=True)],
        strand2=[p[4].strip() if p[4].strip() in ("+", "-") else schema.MISSING for p in p_parts],
        cell=[e[1].strip() for e in e_parts],
        label=label,
        source="bengi",
        assay=m.group("assay") if m else schema.MISSING,
    )
    df[COL_BENGI_DISTANCE] = dist
    return df


def read_targetfinder(path: str | os.PathLike) -> pd.DataFrame:
    """Read a TargetFinder pair table (with header) as epcli BEDPE columns.

    Parameters
    ----------
    path : str or path-like
        ``<Cell>.ep_pairs.tsv[.gz]`` with the header of :data:`TARGETFINDER_COLUMNS`.

    Returns
    -------
    pandas.DataFrame, shape (n_pairs, 15)
        The ten standard BEDPE columns (``name`` = ``<enhancer chr:s-e>|<promoter chr:s-e>``
        since the table names no gene; ``strand2`` = ``.``), then ``cell`` (the table's
        ``cell_line``, e.g. ``HeLa-S3``), ``label``, ``source`` (``targetfinder``), ``assay``
        (``HiC``) and ``fold``. One row per data line, in file order.

    Raises
    ------
    EpcliError
        Wrong header or column count, non-integer coordinates, labels other than 0/1, empty
        intervals, trans pairs or an empty cell_line, with the file and line.
    """
    where = display_name(path)
    cols, lines = _read_columns(path, TARGETFINDER_COLUMNS, header=True)
    label = _labels(cols["label"], lines, where)
    coords = _coords(cols, lines, where)
    cell = cols["cell_line"]
    _raise_first(
        np.array([c == "" for c in cell]),
        lines,
        where,
        "cell_line is empty{value}",
        lambda i: "",
        "every pair needs its cell line",
    )
    c1, s1, e1 = coords["chrom1"], coords["start1"], coords["end1"]
    c2, s2, e2 = coords["chrom2"], coords["start2"], coords["end2"]
    name = [f"{c1[i]}:{s1[i]}-{e1[i]}|{c2[i]}:{s2[i]}-{e2[i]}" for i in range(len(label))]
    return _frame(
        coords,
        name=name,
        strand2=[schema.MISSING] * len(label),
        cell=cell,
        label=label,
        source="targetfinder",
        assay="HiC",
    )


def read_source(directory: str | os.PathLike, source: str, assay: str = "HiC") -> pd.DataFrame:
    """Read every table of one source in a folder and stack them.

    Parameters
    ----------
    directory : path
        ``.../transepi_bengi`` or ``.../targetfinder``.
    source : {"bengi", "targetfinder"}
    assay : str
        BENGI only: which assay's tables (``HiC``, ``CTCF-ChIAPET``, ``RNAPII-ChIAPET``, or
        ``all``).

    Returns
    -------
    pandas.DataFrame
        Rows of all tables, files in sorted name order.
    """
    d = Path(directory)
    if source == "bengi":
        pattern = "*-Benchmark*.tsv*" if assay == "all" else f"*.{assay}-Benchmark*.tsv*"
        files = sorted(d.glob(pattern))
        reader = read_bengi
    elif source == "targetfinder":
        files = sorted(d.glob("*.ep_pairs.tsv*"))
        reader = read_targetfinder
    else:
        raise UsageError(f"unknown source {source!r}", hint="use bengi or targetfinder")
    if not files:
        raise EpcliError(f"no {source} tables found", path=d, hint="check the folder")
    frames = [reader(f) for f in files]
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- splits
def _train_mask(df: pd.DataFrame, train_cells: Sequence[str]) -> np.ndarray:
    wanted = {canonical_cell(c) for c in train_cells}
    canon = df["cell"].map(canonical_cell)
    if not canon.isin(wanted).any():
        raise UsageError(
            "none of the training cells " + ", ".join(train_cells) + " is in the data",
            hint="cells present: " + ", ".join(sorted(df["cell"].unique())),
        )
    return canon.isin(wanted).to_numpy(bool)


def strict_split(
    df: pd.DataFrame, test_fold: int | str, train_cells: Sequence[str] = STRICT_TRAIN_CELLS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """TransEPI's strict split: held-out cells AND held-out chromosomes.

    Parameters
    ----------
    df : pandas.DataFrame
        Pairs with ``cell`` and ``chrom1`` (e.g. from :func:`read_bengi`).
    test_fold : int or str
        ``0``..``4`` or ``fold0``..``fold4``.
    train_cells : sequence of str
        Training cells, compared through :func:`canonical_cell`.

    Returns
    -------
    train_df : pandas.DataFrame
        Pairs of the training cells on chromosomes outside the test fold (chromosomes in no
        fold, e.g. chrY, are training chromosomes).
    test_df : pandas.DataFrame
        Pairs of every other cell on the test fold's chromosomes.
    """
    fold = fold_name(test_fold)
    is_train_cell = _train_mask(df, train_cells)
    in_fold = df["chrom1"].isin(FOLDS[fold]).to_numpy(bool)
    return df[is_train_cell & ~in_fold].copy(), df[~is_train_cell & in_fold].copy()


def cell_only_split(
    df: pd.DataFrame, test_fold: int | str, train_cells: Sequence[str] = STRICT_TRAIN_CELLS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same test set as :func:`strict_split`, but training on ALL chromosomes.

    This is the leaky "held-out cell line only" protocol, for comparison: the training cells'
    pairs on the test chromosomes stay in training.

    Returns
    -------
    (train_df, test_df) : tuple of pandas.DataFrame
    """
    fold = fold_name(test_fold)
    is_train_cell = _train_mask(df, train_cells)
    in_fold = df["chrom1"].isin(FOLDS[fold]).to_numpy(bool)
    return df[is_train_cell].copy(), df[~is_train_cell & in_fold].copy()


def _rows_in(a: pd.DataFrame, b: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """Whether each row of ``a`` equals some row of ``b`` on ``cols``; shape (len(a),), bool."""
    cols = list(cols)
    m = a[cols].merge(b[cols].drop_duplicates(), how="left", on=cols, indicator=True)
    return (m["_merge"] == "both").to_numpy(bool)


def _anchors(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    a = df[list(cols)].drop_duplicates()
    a.columns = ["chrom", "start", "end"]
    return a.reset_index(drop=True)


def leakage_figures(train_df: pd.DataFrame, test_df: pd.DataFrame) -> dict[str, float]:
    """How much of the test set training already shows.

    Parameters
    ----------
    train_df, test_df : pandas.DataFrame
        Pairs with the six BEDPE coordinate columns (and ``label``).

    Returns
    -------
    dict
        ``n_test`` pairs, and shares in [0, 1]:

        - ``pair_identical``: test pairs whose six coordinates equal a training pair's;
        - ``pair_identical_same_label``: ... and whose label is that pair's label too;
        - ``promoter_seen`` / ``enhancer_seen``: distinct test promoters / enhancers
          (chrom, start, end) that occur exactly in training;
        - ``promoter_overlap`` / ``enhancer_overlap``: distinct test promoters / enhancers
          that overlap (>= 1 bp) a training promoter / enhancer.

        NaN everywhere when the test set is empty.
    """
    keys = (
        "pair_identical",
        "pair_identical_same_label",
        "promoter_seen",
        "enhancer_seen",
        "promoter_overlap",
        "enhancer_overlap",
    )
    out: dict[str, float] = {"n_test": int(len(test_df))}
    if len(test_df) == 0:
        out.update({k: float("nan") for k in keys})
        return out
    coords = list(schema.BEDPE_COORDS)
    out["pair_identical"] = float(_rows_in(test_df, train_df, coords).mean())
    out["pair_identical_same_label"] = float(
        _rows_in(test_df, train_df, coords + [schema.COL_LABEL]).mean()
    )
    for kind, cols in (("promoter", coords[3:]), ("enhancer", coords[:3])):
        te, tr = _anchors(test_df, cols), _anchors(train_df, cols)
        out[f"{kind}_seen"] = float(_rows_in(te, tr, ["chrom", "start", "end"]).mean())
        out[f"{kind}_overlap"] = float(overlaps_any(te, tr).mean())
    return {"n_test": out["n_test"], **{k: out[k] for k in keys}}


def cell_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per cell: ``n``, ``n_pos``, ``prevalence`` (rows sorted by cell)."""
    g = df.groupby("cell", sort=True)["label"]
    out = pd.DataFrame({"n": g.size(), "n_pos": g.sum().astype(np.int64)})
    out["prevalence"] = out["n_pos"] / out["n"]
    return out.reset_index()


# ----------------------------------------------------------------------------- writer
def _output_columns(df: pd.DataFrame) -> list[str]:
    missing = [c for c in schema.BEDPE_STANDARD if c not in df.columns]
    if missing:
        raise ValueError(f"frame lacks BEDPE columns: {missing}")
    extras = [c for c in df.columns if c not in schema.BEDPE_STANDARD and not c.startswith("_")]
    return list(schema.BEDPE_STANDARD) + extras


def write_bedpe(df: pd.DataFrame, path_or_fh: str | os.PathLike | IO[str]) -> None:
    """Write pairs as BEDPE with a ``#chrom1 ... cell label ...`` header.

    Columns: the ten standard ones, then every other column of ``df`` in frame order
    (columns whose name starts with ``_`` are internal and dropped). Float columns are
    written with up to 12 significant digits (``NA`` for missing), so BENGI's half-bp
    distances survive. A path is written atomically (``.gz`` -> gzipped; ``-`` -> stdout).

    Parameters
    ----------
    df : pandas.DataFrame
        Pairs, e.g. from :func:`read_bengi`.
    path_or_fh : path or text file handle
    """
    cols = _output_columns(df)
    out = df[cols].copy()
    for c in cols:
        if out[c].dtype.kind == "f":
            out[c] = [("NA" if np.isnan(v) else f"{v:.12g}") for v in out[c].to_numpy()]
    if hasattr(path_or_fh, "write"):
        write_bedpe_rows(path_or_fh, out, cols, header=True)  # type: ignore[arg-type]
        return
    with open_text_output(path_or_fh, force=True) as fh:
        write_bedpe_rows(fh, out, cols, header=True)


__all__ = [
    "BENGI_COLUMNS",
    "CHROM_FOLD",
    "COL_BENGI_DISTANCE",
    "FOLDS",
    "NO_FOLD",
    "STRICT_TRAIN_CELLS",
    "TARGETFINDER_COLUMNS",
    "canonical_cell",
    "cell_only_split",
    "cell_summary",
    "fold_name",
    "fold_of",
    "leakage_figures",
    "read_bengi",
    "read_source",
    "read_targetfinder",
    "strict_split",
    "write_bedpe",
]
