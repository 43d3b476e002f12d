"""Per-cell evaluation of scored pairs: AUPR with a bootstrap interval, AUROC, thresholds.

The table has exactly the columns :data:`epcli.core.schema.EVAL_COLUMNS`, one row per cell line
(sorted by name) and an ``ALL`` row last. Everything here is numpy, pandas and
scikit-learn; nothing knows about files or the terminal. Problems that do not stop the
evaluation (a cell with one class, unlabeled rows, collapsed scores) are returned as
warning strings in ``table.attrs["warnings"]``.

Conventions
-----------
* AUPR, the best-F1 threshold (ties: the highest threshold), the threshold at a target
  recall and the collapse check are the rules of :mod:`epcli.core.metrics`, the ones
  ``train`` and ``adapt`` use too; :func:`bootstrap_aupr` is a vectorised AUPR over many
  resamples that equals :func:`~epcli.core.metrics.aupr` on each (tested).
* ``distance_aupr`` is the AUPR of ``-distance`` on the same rows: the baseline that says
  "closer pairs interact".
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from epcli.core import schema
from epcli.core.metrics import aupr, best_f1, collapse_check, recall_point

#: Elements per bootstrap block (bounds memory: about 8 bytes per element).
_BOOT_BLOCK = 4_000_000

_FLOAT_COLS = tuple(c for c in schema.EVAL_COLUMNS if c not in ("cell", "n", "n_pos"))


def _select_all_check(precision: float, recall: float, prevalence: float) -> str | None:
    """The collapse signature of the research diaries: best F1 only by calling everything."""
    if recall >= 1.0 and abs(precision - prevalence) < 1e-12:
        return (
            "the best F1 is reached by calling every pair positive (recall 1, precision = "
            "prevalence): the scores do not rank positives above negatives"
        )
    return None


def bootstrap_aupr(
    scores: np.ndarray,
    labels: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """AUPR of ``n_boot`` bootstrap resamples of the pairs (vectorised).

    Each resample draws ``n`` pairs with replacement. Scores are ranked once; a resample is
    then a vector of counts per (tied-score group, class), and its average precision is
    ``sum_k dTP_k * TP_k / (TP_k + FP_k) / TP`` over the groups in decreasing score order,
    which is what :func:`~sklearn.metrics.average_precision_score` computes on the
    resampled arrays.

    Parameters
    ----------
    scores : np.ndarray, shape (n,)
    labels : np.ndarray, shape (n,)
        0 or 1.
    n_boot : int
        Number of resamples.
    rng : numpy.random.Generator

    Returns
    -------
    np.ndarray, shape (m,)
        AUPR of the ``m <= n_boot`` resamples that hold both classes.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    n = s.size
    if n == 0 or n_boot <= 0:
        return np.empty(0)
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    # group id per pair: 0 for the highest score, tied scores share a group
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    new_group[1:] = s_sorted[1:] != s_sorted[:-1]
    g_sorted = np.cumsum(new_group) - 1
    n_groups = int(g_sorted[-1]) + 1
    group = np.empty(n, dtype=np.int64)
    group[order] = g_sorted
    key = (2 * group + y).astype(np.int32 if 2 * n_groups < 2**31 else np.int64)
    width = 2 * n_groups

    out: list[np.ndarray] = []
    block = max(1, min(n_boot, _BOOT_BLOCK // max(n, 1)))
    done = 0
    while done < n_boot:
        b = min(block, n_boot - done)
        idx = rng.integers(0, n, size=(b, n), dtype=np.int64 if n >= 2**31 else np.int32)
        k = key[idx].astype(np.int64)
        k += (np.arange(b, dtype=np.int64) * width)[:, None]
        counts = np.bincount(k.ravel(), minlength=b * width).reshape(b, n_groups, 2)
        pos = counts[:, :, 1]
        tp = np.cumsum(pos, axis=1)
        called = np.cumsum(pos + counts[:, :, 0], axis=1)
        total_pos = tp[:, -1]
        prec = np.divide(tp, called, out=np.zeros(tp.shape), where=called > 0)
        ap = (pos * prec).sum(axis=1) / np.maximum(total_pos, 1)
        ok = (total_pos > 0) & (total_pos < n)
        out.append(ap[ok])
        done += b
    return np.concatenate(out)


def _cell_rng(seed: int, cell: str) -> np.random.Generator:
    """A generator for one cell that depends only on the seed and the cell's name."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(cell.encode("utf-8"))])


def _empty_row(cell: str, n: int, n_pos: int) -> dict:
    row: dict = {c: np.nan for c in _FLOAT_COLS}
    row.update(cell=cell, n=n, n_pos=n_pos, prevalence=(n_pos / n) if n else np.nan)
    return row


def evaluate_rows(
    cell: str,
    scores: np.ndarray,
    labels: np.ndarray,
    distance: np.ndarray | None,
    *,
    bootstrap: int = 1000,
    target_recall: float = 0.7,
    seed: int = 0,
) -> tuple[dict, list[str]]:
    """Metrics of one group of labeled pairs.

    Parameters
    ----------
    cell : str
        Name of the row.
    scores : np.ndarray, shape (n,)
    labels : np.ndarray, shape (n,)
        0 or 1 (no unknowns).
    distance : np.ndarray, shape (n,), optional
        Anchor distance in bp; ``None`` leaves ``distance_aupr`` NA.
    bootstrap, target_recall, seed
        See :func:`evaluate_table`.

    Returns
    -------
    row : dict
        One value per column of :data:`epcli.core.schema.EVAL_COLUMNS` (NaN for NA).
    warnings : list of str
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    n = int(y.size)
    n_pos = int(y.sum())
    row = _empty_row(cell, n, n_pos)
    warnings: list[str] = []
    if n == 0:
        warnings.append(f"{cell}: no labeled pairs; metrics are NA")
        return row, warnings
    check = collapse_check(s)
    collapsed = check.reasons[0] + ": the model has collapsed" if check.collapsed else None
    if collapsed:
        warnings.append(f"{cell}: {collapsed}")
    if n_pos == 0 or n_pos == n:
        only = "negatives" if n_pos == 0 else "positives"
        warnings.append(f"{cell}: only {only} among {n} labeled pairs; metrics are NA")
        return row, warnings

    row["aupr"] = aupr(y, s)
    boot = bootstrap_aupr(s, y, bootstrap, _cell_rng(seed, cell))
    if boot.size:
        row["aupr_lo"], row["aupr_hi"] = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    from sklearn.metrics import roc_auc_score  # imported on use: ~1 s of every CLI start

    row["auroc"] = float(roc_auc_score(y, s))
    best = best_f1(y, s)
    row["best_f1_threshold"] = best.threshold
    row["precision"] = best.precision
    row["recall"] = best.recall
    row["f1"] = best.f1
    row["threshold_at_recall"], row["precision_at_recall"] = recall_point(y, s, target_recall)
    if distance is not None:
        d = np.asarray(distance, dtype=np.float64)
        row["distance_aupr"] = aupr(y, -d)
    select_all = _select_all_check(row["precision"], row["recall"], row["prevalence"])
    if select_all and not collapsed:
        warnings.append(f"{cell}: {select_all}")
    return row, warnings


def evaluate_table(
    scores: np.ndarray,
    labels: np.ndarray,
    distance: np.ndarray | None,
    cells: Sequence[str] | np.ndarray | None,
    *,
    bootstrap: int = 1000,
    target_recall: float = 0.7,
    seed: int = 0,
    cell_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The evaluation table: one row per cell line (sorted by name), then ``ALL``.

    Parameters
    ----------
    scores : np.ndarray, shape (n,)
        Finite scores; higher means more likely to interact.
    labels : np.ndarray, shape (n,)
        1, 0, or -1 for unknown. Unknown rows are left out (and counted in a warning).
    distance : np.ndarray, shape (n,), optional
        Anchor distance in bp for the ``distance_aupr`` baseline; ``None`` leaves it NA.
    cells : sequence of str, shape (n,), optional
        Cell line of each pair. ``None`` gives the ``ALL`` row only.
    bootstrap : int
        Bootstrap resamples for ``aupr_lo``/``aupr_hi`` (0: leave them NA).
    target_recall : float
        Recall in (0, 1] for ``threshold_at_recall``.
    seed : int
        Seed of the bootstrap. Each cell's resamples depend only on the seed and the cell's
        name, so a row does not change when other cells are added.
    cell_names : sequence of str, optional
        Cells to give rows to, also when they have no pairs here (default: the cells that
        occur in ``cells``; pairs of other cells still count in ``ALL``). Ignored when
        ``cells`` is ``None``.

    Returns
    -------
    pandas.DataFrame
        Columns exactly :data:`epcli.core.schema.EVAL_COLUMNS`; ``n`` and ``n_pos`` are integers,
        the rest floats with NaN for NA. ``attrs["warnings"]`` is a list of str.

    Raises
    ------
    ValueError
        On arrays of different lengths, non-finite scores, labels outside {-1, 0, 1}, a
        target recall outside (0, 1], or a cell named like the ``ALL`` row.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    n = s.size
    d = None if distance is None else np.asarray(distance, dtype=np.float64)
    c = None if cells is None else pd.Series(np.asarray(cells)).astype(str).to_numpy(object)
    for name, arr in (("labels", y), ("distance", d), ("cells", c)):
        if arr is not None and arr.shape != (n,):
            raise ValueError(f"{name} has shape {arr.shape}, expected ({n},)")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    if not np.isin(y, (-1, 0, 1)).all():
        raise ValueError("labels must be -1, 0 or 1")
    if not 0.0 < target_recall <= 1.0:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be >= 0, got {bootstrap}")

    warnings: list[str] = []
    known = y >= 0
    n_unknown = int((~known).sum())
    if n_unknown:
        warnings.append(f"{n_unknown} of {n} pairs have no label (-1) and are left out")
    kw = dict(bootstrap=bootstrap, target_recall=target_recall, seed=seed)
    rows: list[dict] = []
    if c is not None:
        names = sorted({str(v) for v in (c if cell_names is None else cell_names)})
        if schema.EVAL_ALL in names:
            raise ValueError(f"a cell is named {schema.EVAL_ALL!r}, the name of the total row")
        for cell in names:
            m = known & (c == cell)
            row, w = evaluate_rows(cell, s[m], y[m], None if d is None else d[m], **kw)
            rows.append(row)
            warnings.extend(w)
    row, w = evaluate_rows(
        schema.EVAL_ALL, s[known], y[known], None if d is None else d[known], **kw
    )
    rows.append(row)
    warnings.extend(w)
    table = _frame(rows)
    table.attrs["warnings"] = warnings
    return table


def _frame(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(schema.EVAL_COLUMNS))
    table["n"] = table["n"].astype(np.int64)
    table["n_pos"] = table["n_pos"].astype(np.int64)
    for col in _FLOAT_COLS:
        table[col] = table[col].astype(np.float64)
    return table


def pr_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision along the PR curve (for plots).

    Parameters
    ----------
    scores : np.ndarray, shape (n,)
    labels : np.ndarray, shape (n,)
        0 or 1, both present.

    Returns
    -------
    recall, precision : np.ndarray, shape (m,)
        From recall 1 down to recall 0, as :func:`~sklearn.metrics.precision_recall_curve`.
    """
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(np.asarray(labels), np.asarray(scores))
    return recall, precision


def format_table(table: pd.DataFrame, decimals: int = 4) -> str:
    """The table as TSV text: a header line, floats with ``decimals`` decimals, ``NA``.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns :data:`epcli.core.schema.EVAL_COLUMNS`.
    decimals : int

    Returns
    -------
    str
        Tab-separated lines, each ending in a newline.
    """
    lines = ["\t".join(schema.EVAL_COLUMNS)]
    for rec in table[list(schema.EVAL_COLUMNS)].itertuples(index=False):
        fields = []
        for col, v in zip(schema.EVAL_COLUMNS, rec, strict=True):
            if col in ("cell",):
                fields.append(str(v))
            elif col in ("n", "n_pos"):
                fields.append(str(int(v)))
            elif v is None or (isinstance(v, float) and np.isnan(v)):
                fields.append("NA")
            else:
                fields.append(f"{float(v):.{decimals}f}")
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"
