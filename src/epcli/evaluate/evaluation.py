"""Evaluate scored pairs against labels: the per-cell table, leakage audit and PR curves.

The library behind ``epcli evaluate``; it knows nothing of the terminal. The flow is

1. :func:`load_scored` reads a scored BEDPE (``score`` column, labels from a ``label``
   column or joined from a labeled ``truth`` BEDPE) into :class:`ScoredPairs`;
2. :meth:`ScoredPairs.select_cells` keeps the pairs of some cell lines;
3. :func:`run_evaluation` builds the table (:func:`epcli.evaluate.metrics.evaluate_table`), and with
   training data the leakage audit (:mod:`.leakage`) and its ``<cell>|leak-free`` rows;
4. :func:`plot_pr_curves` draws precision-recall curves per cell.

Warnings are returned as data (``warnings`` lists), never printed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from epcli.core import schema
from epcli.core.errors import EpcliError, UsageError
from epcli.core.pairs import pair_distance
from epcli.evaluate.metrics import evaluate_table, pr_curve
from epcli.io.bedpe import LINE_COL, read_bedpe
from epcli.io.files import atomic_path, display_name

#: Suffixes :func:`plot_pr_curves` can write.
PLOT_FORMATS: tuple[str, ...] = ("png", "pdf", "svg")
#: How rows are grouped: ``"cell"`` (one row per cell line and ``ALL``) or ``"none"``.
BY_CHOICES: tuple[str, ...] = ("cell", "none")

By = Literal["cell", "none"]


@dataclass
class ScoredPairs:
    """Scored, labeled pairs ready to evaluate.

    Attributes
    ----------
    frame : pandas.DataFrame, n rows
        The BEDPE rows (columns as read by :func:`epcli.io.bedpe.read_bedpe`, with ``label`` and
        ``cell`` replaced by the truth's when a truth file was joined).
    scores : np.ndarray, shape (n,), float64
        Finite scores (BEDPE column 8).
    labels : np.ndarray, shape (n,), int64
        1, 0, or -1 for unknown.
    cells : np.ndarray, shape (n,), object
        Cell line of each pair (``"."`` when none is named).
    distance : np.ndarray, shape (n,), int64
        Distance between anchor midpoints in bp (the distance baseline).
    source : str
        Display name of the scored file (``<stdin>`` for ``-``).
    truth_source : str or None
        Display name of the truth file, when labels were joined from one.
    n_truth_matched : int or None
        Scored pairs that found a row in the truth file (None without one).
    warnings : list of str
        Problems found while reading (e.g. scored pairs without a truth row).
    """

    frame: pd.DataFrame
    scores: np.ndarray
    labels: np.ndarray
    cells: np.ndarray
    distance: np.ndarray
    source: str
    truth_source: str | None = None
    n_truth_matched: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def n_pairs(self) -> int:
        """Number of pairs, labeled or not."""
        return len(self.labels)

    @property
    def n_labeled(self) -> int:
        """Pairs with a known label (0 or 1)."""
        return int((self.labels >= 0).sum())

    @property
    def n_positive(self) -> int:
        """Pairs labeled 1."""
        return int((self.labels == 1).sum())

    @property
    def has_cells(self) -> bool:
        """Whether any pair names a cell line."""
        return bool((self.cells.astype(str) != schema.MISSING).any())

    def groups(self, by: By = "cell") -> np.ndarray | None:
        """Group of each pair for the table, shape (n,), object; None for the ``ALL`` row only.

        ``by="none"``, or a file that names no cell line, gives None.
        """
        _check_by(by)
        if by == "none" or not self.has_cells:
            return None
        return self.cells

    def subset(self, keep: np.ndarray) -> ScoredPairs:
        """The pairs where ``keep`` (shape (n,), bool) is True; warnings are kept."""
        keep = np.asarray(keep, dtype=bool)
        return replace(
            self,
            frame=self.frame[keep],
            scores=self.scores[keep],
            labels=self.labels[keep],
            cells=self.cells[keep],
            distance=self.distance[keep],
            warnings=list(self.warnings),
        )

    def select_cells(self, wanted: Sequence[str]) -> ScoredPairs:
        """The pairs of the cell lines ``wanted``.

        Raises
        ------
        UsageError
            When ``wanted`` is empty or names a cell line with no pairs here.
        """
        wanted = list(wanted)
        valid = sorted(set(self.cells))
        unknown = [c for c in wanted if c not in valid]
        if unknown or not wanted:
            raise UsageError(
                f"unknown cell line(s) in --cells: {', '.join(unknown) or '(none given)'}",
                hint=f"cell lines in {self.source}: {', '.join(valid)}",
            )
        return self.subset(np.isin(self.cells, wanted))


@dataclass
class EvaluationResult:
    """What :func:`run_evaluation` computed.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns :data:`epcli.core.schema.EVAL_COLUMNS`: one row per cell (sorted), ``ALL``, then
        with training data the ``<cell>|leak-free`` rows and ``ALL|leak-free``.
    groups : np.ndarray, shape (n,), object, or None
        The group of each pair the table used (None: ``ALL`` only).
    warnings : list of str
        Warnings of the table, then of the leakage audit and the leak-free rows.
    leakage : pandas.DataFrame or None
        :func:`epcli.evaluate.leakage.summarize` of the labeled pairs against the training data
        (columns ``cell``, ``n``, ``enh_seen``, ``pro_seen``, ``both``, ``leak_free``);
        None without training data.
    """

    table: pd.DataFrame
    groups: np.ndarray | None
    warnings: list[str] = field(default_factory=list)
    leakage: pd.DataFrame | None = None


# ------------------------------------------------------------------------------ reading
def load_scored(
    path: str | os.PathLike,
    *,
    cell: str | None = None,
    truth: str | os.PathLike | None = None,
) -> ScoredPairs:
    """Read a scored BEDPE and its labels.

    Parameters
    ----------
    path : path-like
        Scored BEDPE (file, ``.gz`` or ``-`` for stdin) with a ``score`` column (column 8),
        and a ``label`` column unless ``truth`` is given.
    cell : str, optional
        Cell line of every pair (overrides a ``cell`` column).
    truth : path-like, optional
        Labeled BEDPE joined on the six coordinates (and the cell when both files name
        cells); its labels replace those of ``path``.

    Returns
    -------
    ScoredPairs

    Raises
    ------
    EpcliError
        No or non-finite scores (with file:line), no labels, a truth file that matches
        nothing or disagrees with itself, or a cell line named ``ALL``.
    """
    where = display_name(path)
    df = read_bedpe(path, cell=cell)
    scores = _parse_scores(df, df.attrs["layout"].columns, where)
    warnings: list[str] = []
    truth_source = n_matched = None
    if truth is not None:
        truth_source = display_name(truth)
        labels, cells, n_matched, warnings = _join_truth(df, truth, where)
        df = df.assign(label=labels, cell=cells)
    else:
        _require_labels(df, where)
    labels = df[schema.COL_LABEL].to_numpy().astype(np.int64)
    cells = df[schema.COL_CELL].astype(str).to_numpy(dtype=object)
    if schema.EVAL_ALL in set(cells):
        raise EpcliError(
            f"a cell line is named {schema.EVAL_ALL!r}, the name of the total row",
            path=where,
            hint="rename that cell line",
        )
    return ScoredPairs(
        frame=df,
        scores=scores,
        labels=labels,
        cells=cells,
        distance=pair_distance(df),
        source=where,
        truth_source=truth_source,
        n_truth_matched=n_matched,
        warnings=warnings,
    )


def _require_labels(df: pd.DataFrame, where: str) -> None:
    """Raise unless ``df`` has a label column with at least one known label."""
    if schema.COL_LABEL not in df.attrs["layout"].columns:
        raise EpcliError(
            "cannot evaluate without labels; add a label column or pass --truth",
            path=where,
            hint="name it in a '#chrom1 ... label' header line",
        )
    if (df[schema.COL_LABEL].to_numpy() < 0).all():
        raise EpcliError(
            "cannot evaluate without labels; add a label column or pass --truth "
            "(every label is unknown)",
            path=where,
        )


def _parse_scores(df: pd.DataFrame, columns: list[str], where: str) -> np.ndarray:
    """Column 8 as finite floats, shape (n,); the first bad value raises with file:line."""
    if "score" not in columns:
        raise EpcliError(
            "no score column (column 8 of a BEDPE)",
            path=where,
            hint="score pairs with 'epcli predict', or give 10 columns / a header naming 'score'",
        )
    raw = df["score"]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        text = str(raw.iloc[i])
        what = "not a number" if np.isnan(values[i]) else "not a finite number"
        raise EpcliError(
            f"score is {what}: {text!r}",
            path=where,
            line=int(df[LINE_COL].iloc[i]),
            hint="column 8 (score) must hold a finite number for every pair",
        )
    return values


def _has_cells(values: pd.Series) -> bool:
    return bool((values.astype(str) != schema.MISSING).any())


def _join_truth(
    df: pd.DataFrame, truth_path: str | os.PathLike, where: str
) -> tuple[np.ndarray, np.ndarray, int, list[str]]:
    """Labels (and cells) for the rows of ``df`` from a labeled BEDPE.

    Returns
    -------
    labels : np.ndarray, shape (n,), int8
        -1 where the truth has no row for the pair.
    cells : np.ndarray, shape (n,), object
        ``df``'s cells, or the truth's where ``df`` names none.
    n_matched : int
        Rows of ``df`` that found a truth row.
    warnings : list of str
        A warning when some rows found none.
    """
    tname = display_name(truth_path)
    truth = read_bedpe(truth_path)
    if schema.COL_LABEL not in truth.attrs["layout"].columns:
        raise EpcliError(
            "--truth file has no label column",
            path=tname,
            hint="name it in a '#chrom1 ... label' header line",
        )
    truth = truth[truth[schema.COL_LABEL] >= 0]
    if truth.empty:
        raise EpcliError("--truth file has no known labels (all are unknown)", path=tname)
    scored_cells = _has_cells(df[schema.COL_CELL])
    truth_cells = _has_cells(truth[schema.COL_CELL])
    by_cell = scored_cells and truth_cells
    key = list(schema.BEDPE_COORDS) + ([schema.COL_CELL] if by_cell else [])
    t = truth[key + [schema.COL_LABEL, LINE_COL]].copy()
    if not by_cell:
        t["_truth_cell"] = truth[schema.COL_CELL].astype(str)
    first = t.groupby(key, sort=False)[schema.COL_LABEL].transform("first")
    conflict = (t[schema.COL_LABEL] != first).to_numpy()
    if conflict.any():
        line = int(t[LINE_COL].iloc[int(np.argmax(conflict))])
        raise EpcliError(
            "this pair appears again with a different label",
            path=tname,
            line=line,
            hint="each pair (and cell) may carry one label",
        )
    if not by_cell:
        t["_n_cells"] = t.groupby(key, sort=False)["_truth_cell"].transform("nunique")
    t = t.drop_duplicates(key)
    merged = df[key].merge(
        t.drop(columns=[LINE_COL]), on=key, how="left", validate="many_to_one", sort=False
    )
    matched = merged[schema.COL_LABEL].notna().to_numpy()
    n_matched = int(matched.sum())
    if n_matched == 0:
        raise EpcliError(
            f"--truth matched no rows of {where}",
            path=tname,
            hint="pairs are joined on chrom1 start1 end1 chrom2 start2 end2"
            + (" and cell" if by_cell else "")
            + "; check coordinates, chromosome names and cell names",
        )
    labels = merged[schema.COL_LABEL].fillna(-1).to_numpy().astype(np.int8)
    cells = df[schema.COL_CELL].astype(str).to_numpy(dtype=object)
    if truth_cells and not scored_cells:
        ambiguous = matched & (merged["_n_cells"].fillna(1).to_numpy() > 1)
        if ambiguous.any():
            i = int(np.argmax(ambiguous))
            raise EpcliError(
                "this pair matches rows of several cell lines in the --truth file",
                path=where,
                line=int(df[LINE_COL].iloc[i]),
                hint="add a cell column to SCORED or pass --cell NAME",
            )
        cells = np.where(matched, merged["_truth_cell"].astype(str).to_numpy(), cells)
    warnings = []
    if n_matched < len(df):
        warnings.append(
            f"{len(df) - n_matched} of {len(df)} scored pairs have no row in {tname}; left out"
        )
    return labels, cells.astype(object), n_matched, warnings


# ---------------------------------------------------------------------------- evaluating
def run_evaluation(
    scored: ScoredPairs,
    *,
    by: By = "cell",
    bootstrap: int = 1000,
    target_recall: float = 0.7,
    seed: int = 0,
    train_data: str | os.PathLike | None = None,
) -> EvaluationResult:
    """The evaluation table of ``scored``, with leak-free rows when training data is given.

    Parameters
    ----------
    scored : ScoredPairs
        From :func:`load_scored` (optionally :meth:`ScoredPairs.select_cells`).
    by : {"cell", "none"}
        ``"cell"``: one row per cell line and ``ALL``; ``"none"``: ``ALL`` only. A file that
        names no cell line gives ``ALL`` only either way.
    bootstrap : int
        Bootstrap resamples for the AUPR interval (0: none).
    target_recall : float
        Recall in (0, 1] for ``threshold_at_recall``.
    seed : int
        Seed of the bootstrap.
    train_data : path-like, optional
        Training data (HDF5 from ``epcli prepare``, or BEDPE): audit anchor overlap of the
        labeled pairs and add ``<cell>|leak-free`` rows (pairs with neither anchor seen).

    Returns
    -------
    EvaluationResult
    """
    group = scored.groups(by)
    kw = dict(bootstrap=bootstrap, target_recall=target_recall, seed=seed)
    names = None
    if group is not None:  # a '.' (no cell) group only when it holds labeled pairs
        names = sorted(set(group[scored.labels >= 0]) | (set(group) - {schema.MISSING}))
    table = evaluate_table(
        scored.scores, scored.labels, scored.distance, group, cell_names=names, **kw
    )
    result = EvaluationResult(
        table=table, groups=group, warnings=list(table.attrs.get("warnings", []))
    )
    if train_data is not None:
        extra, summary, leak_warnings = _leakage(train_data, scored, group, kw)
        result.table = pd.concat([table, extra], ignore_index=True)
        result.leakage = summary
        result.warnings += leak_warnings
    return result


def read_training_anchors(path: str | os.PathLike) -> pd.DataFrame:
    """Unique anchors of training data: an HDF5 dataset (by its signature) or a BEDPE.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`epcli.evaluate.leakage.ANCHOR_COLUMNS` (kind, chrom, start, end).
    """
    from epcli.evaluate import leakage
    from epcli.io.source import is_hdf5

    if is_hdf5(path):
        from epcli.io.hdf5 import read_anchor_table

        return read_anchor_table(path)
    return leakage.anchors_from_bedpe(read_bedpe(path))


def _leakage(
    train_data: str | os.PathLike,
    scored: ScoredPairs,
    group: np.ndarray | None,
    kw: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Audit the labeled pairs' anchors against the training data.

    Returns the leak-free rows, the :func:`epcli.evaluate.leakage.summarize` table and the warnings.
    """
    from epcli.evaluate import leakage

    anchors = read_training_anchors(train_data)
    known = scored.labels >= 0
    flags = leakage.audit(scored.frame[known], anchors)
    warnings = list(flags.attrs.get("warnings", []))
    sub_group = None if group is None else group[known]
    summary = leakage.summarize(flags, sub_group)
    free = leakage.leak_free_table(
        scored.scores[known],
        scored.labels[known],
        scored.distance[known],
        sub_group,
        flags,
        **kw,
    )
    warnings += free.attrs.get("warnings", [])
    return free, summary, warnings


def _check_by(by: str) -> None:
    if by not in BY_CHOICES:
        raise ValueError(f"by must be one of {BY_CHOICES}, got {by!r}")


# ------------------------------------------------------------------------------ plotting
def check_plot_backend() -> None:
    """Raise :class:`~epcli.core.errors.EpcliError` (with an install hint) without matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        raise EpcliError(
            "--plot needs matplotlib, which is not installed",
            hint="pip install 'epcli[plot]'",
        )


def plottable(labels: np.ndarray, groups: np.ndarray | None) -> bool:
    """True when at least one curve can be drawn: some cell (or all pairs) has both classes."""
    known = labels >= 0
    sets = [known] if groups is None else [known] + [known & (groups == g) for g in set(groups)]
    return any(np.unique(labels[m]).size == 2 for m in sets)


def plot_pr_curves(
    path: str | os.PathLike,
    scores: np.ndarray,
    labels: np.ndarray,
    distance: np.ndarray,
    groups: np.ndarray | None,
    table: pd.DataFrame,
) -> None:
    """Write the precision-recall figure of :func:`pr_figure` to ``path`` (atomically).

    The suffix of ``path`` (one of :data:`PLOT_FORMATS`) sets the format; the other
    parameters are :func:`pr_figure`'s.
    """
    import warnings

    import matplotlib.pyplot as plt

    path = Path(path)
    with warnings.catch_warnings():  # warnings are returned as data, never printed
        warnings.simplefilter("ignore")
        fig = pr_figure(scores, labels, distance, groups, table)
        fmt = path.suffix.lower().lstrip(".")
        try:
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, dpi=120)
        finally:
            plt.close(fig)


def pr_figure(
    scores: np.ndarray,
    labels: np.ndarray,
    distance: np.ndarray,
    groups: np.ndarray | None,
    table: pd.DataFrame,
):
    """Precision-recall curves per cell: the scores solid, the distance baseline dashed and
    the prevalence (a random ranking's precision) dotted, each cell in its own colour.

    Parameters
    ----------
    scores : np.ndarray, shape (n,)
        Scores, higher means more likely to interact.
    labels : np.ndarray, shape (n,)
        1, 0, or -1 for unknown (left out).
    distance : np.ndarray, shape (n,)
        Anchor distance in bp; the baseline ranks by ``-distance``.
    groups : np.ndarray, shape (n,), object, or None
        Cell of each pair (:attr:`EvaluationResult.groups`); None draws ``ALL`` only.
    table : pandas.DataFrame
        The evaluation table (AUPRs and prevalence in the legend); needs a row for every
        curve.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    known = labels >= 0
    names = [] if groups is None else sorted(set(groups[known]))
    curves: list[tuple[str, np.ndarray]] = [(n, known & (groups == n)) for n in names]
    if len(curves) != 1:
        curves.append((schema.EVAL_ALL, known))
    rows = table.set_index("cell")
    fig, ax = plt.subplots(figsize=(6, 5))
    for i, (name, m) in enumerate(curves):
        y = labels[m]
        if y.size == 0 or y.min() == y.max():
            continue
        colour = "black" if name == schema.EVAL_ALL else f"C{i % 10}"
        r, p = pr_curve(scores[m], y)
        row = rows.loc[name]
        ax.step(r, p, where="post", color=colour, lw=1.5, label=f"{name} (AUPR {row.aupr:.3f})")
        r, p = pr_curve(-distance[m].astype(np.float64), y)
        ax.step(
            r,
            p,
            where="post",
            color=colour,
            lw=1,
            ls="--",
            label=f"{name} distance (AUPR {row.distance_aupr:.3f})",
        )
        ax.axhline(
            row.prevalence,
            color=colour,
            lw=1,
            ls=":",
            label=f"{name} prevalence {row.prevalence:.3f} (random)",
        )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall per cell (dashed: distance; dotted: prevalence)")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
