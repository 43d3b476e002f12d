"""Train/test leakage audit: which evaluated pairs have anchors that training already saw.

Random pair-level splits leak: the same enhancers and promoters sit in training and test
pairs, and a model can score a test pair by memorising each element's interaction rate
(Mao et al. 2018; Xi & Beer 2018). The audit marks, for every evaluated pair, whether its
enhancer overlaps any training enhancer interval and whether its promoter overlaps any
training promoter interval (:func:`epcli.core.intervals.overlaps_any`: at least 1 bp of
overlap, half-open coordinates, as ``bedtools intersect -u``), so metrics can be reported on
the leak-free subset (neither anchor seen) beside the full set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from epcli.core import schema
from epcli.core.intervals import overlaps_any
from epcli.evaluate.metrics import evaluate_table

#: Values of the ``kind`` column of an anchor table.
KIND_ENH = "enhancer"
KIND_PRO = "promoter"
#: Columns of an anchor table.
ANCHOR_COLUMNS: tuple[str, ...] = ("kind", "chrom", "start", "end")
#: Columns of the per-pair flags that :func:`audit` returns.
FLAG_COLUMNS: tuple[str, ...] = ("enh_seen", "pro_seen", "both")
#: Suffix of the leak-free rows' cell names.
LEAK_FREE = "|leak-free"


def anchors_from_bedpe(df: pd.DataFrame) -> pd.DataFrame:
    """The unique anchor intervals of a BEDPE frame as an anchor table.

    Parameters
    ----------
    df : pandas.DataFrame
        Frame with the six BEDPE coordinate columns (anchor 1 = enhancer, 2 = promoter).

    Returns
    -------
    pandas.DataFrame
        Columns ``kind`` (``"enhancer"``/``"promoter"``), ``chrom``, ``start``, ``end``;
        one row per unique interval of each kind.
    """
    parts = []
    for kind, cols in (
        (KIND_ENH, ("chrom1", "start1", "end1")),
        (KIND_PRO, ("chrom2", "start2", "end2")),
    ):
        part = df[list(cols)].drop_duplicates()
        part.columns = ["chrom", "start", "end"]
        part.insert(0, "kind", kind)
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["start"] = out["start"].astype(np.int64)
    out["end"] = out["end"].astype(np.int64)
    return out


def _chr_style(chroms: Sequence[str]) -> str | None:
    names = {str(c) for c in chroms}
    if not names:
        return None
    with_chr = sum(n.startswith("chr") for n in names)
    if with_chr == len(names):
        return "chr"
    if with_chr == 0:
        return "plain"
    return None


def audit(eval_df: pd.DataFrame, train_anchors: pd.DataFrame) -> pd.DataFrame:
    """Flag evaluated pairs whose anchors overlap training anchors.

    Parameters
    ----------
    eval_df : pandas.DataFrame, n rows
        Evaluated pairs with the six BEDPE coordinate columns.
    train_anchors : pandas.DataFrame
        Training anchor intervals: columns ``kind`` (``"enhancer"``/``"promoter"``),
        ``chrom``, ``start``, ``end`` (e.g. :func:`anchors_from_bedpe`, or
        ``epcli.io.hdf5.read_anchor_table``).

    Returns
    -------
    pandas.DataFrame, n rows, index of ``eval_df``
        Boolean columns ``enh_seen`` (the enhancer overlaps a training enhancer),
        ``pro_seen`` (the promoter overlaps a training promoter) and ``both``.
        ``attrs["warnings"]`` lists problems such as chromosome names written in different
        styles (``chr1`` vs ``1``), which would make every overlap silently zero.

    Raises
    ------
    ValueError
        When ``train_anchors`` lacks a column of :data:`ANCHOR_COLUMNS`.
    """
    missing = [c for c in ANCHOR_COLUMNS if c not in train_anchors.columns]
    if missing:
        raise ValueError(f"anchor table lacks column(s): {', '.join(missing)}")
    warnings: list[str] = []
    enh_q = eval_df[["chrom1", "start1", "end1"]].set_axis(["chrom", "start", "end"], axis=1)
    pro_q = eval_df[["chrom2", "start2", "end2"]].set_axis(["chrom", "start", "end"], axis=1)
    kinds = train_anchors["kind"].astype(str)
    enh_t = train_anchors[kinds == KIND_ENH]
    pro_t = train_anchors[kinds == KIND_PRO]
    styles = (_chr_style(eval_df["chrom1"].unique()), _chr_style(train_anchors["chrom"].unique()))
    if None not in styles and styles[0] != styles[1]:
        warnings.append(
            "the evaluated pairs and the training anchors name chromosomes differently "
            "('chr1' vs '1'); no overlap can be found"
        )
    enh_seen = overlaps_any(enh_q, enh_t)
    pro_seen = overlaps_any(pro_q, pro_t)
    flags = pd.DataFrame(
        {"enh_seen": enh_seen, "pro_seen": pro_seen, "both": enh_seen & pro_seen},
        index=eval_df.index,
    )
    flags.attrs["warnings"] = warnings
    return flags


def summarize(flags: pd.DataFrame, cells: Sequence[str] | np.ndarray | None) -> pd.DataFrame:
    """Shares of evaluated pairs whose anchors training saw, per cell and in all.

    Parameters
    ----------
    flags : pandas.DataFrame, n rows
        Output of :func:`audit`.
    cells : sequence of str, shape (n,), optional
        Cell of each pair; ``None`` gives the ``ALL`` row only.

    Returns
    -------
    pandas.DataFrame
        Columns ``cell``, ``n``, ``enh_seen``, ``pro_seen``, ``both``, ``leak_free`` (shares
        in [0, 1]; ``leak_free`` = neither anchor seen), cells sorted, ``ALL`` last.
    """
    e = flags["enh_seen"].to_numpy(bool)
    p = flags["pro_seen"].to_numpy(bool)
    groups: list[tuple[str, np.ndarray]] = []
    if cells is not None:
        c = np.asarray(cells, dtype=object)
        groups = [(name, c == name) for name in sorted({str(v) for v in c})]
    groups.append((schema.EVAL_ALL, np.ones(len(e), dtype=bool)))
    rows = []
    for name, m in groups:
        k = int(m.sum())
        share = lambda x, k=k, m=m: float(x[m].sum() / k) if k else np.nan  # noqa: E731
        rows.append(
            {
                "cell": name,
                "n": k,
                "enh_seen": share(e),
                "pro_seen": share(p),
                "both": share(e & p),
                "leak_free": share(~e & ~p),
            }
        )
    return pd.DataFrame(rows)


def leak_free_table(
    scores: np.ndarray,
    labels: np.ndarray,
    distance: np.ndarray | None,
    cells: Sequence[str] | np.ndarray | None,
    flags: pd.DataFrame,
    **kw,
) -> pd.DataFrame:
    """The evaluation table on the leak-free pairs (neither anchor seen in training).

    Parameters
    ----------
    scores, labels, distance, cells
        As for :func:`epcli.evaluate.metrics.evaluate_table`, shape (n,) each.
    flags : pandas.DataFrame, n rows
        Output of :func:`audit`.
    **kw
        ``bootstrap``, ``target_recall``, ``seed`` for
        :func:`~epcli.evaluate.metrics.evaluate_table`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`epcli.core.schema.EVAL_COLUMNS`; rows named ``<cell>|leak-free`` and
        ``ALL|leak-free``. ``attrs["warnings"]`` as for ``evaluate_table``, renamed alike.
    """
    free = ~(flags["enh_seen"].to_numpy(bool) | flags["pro_seen"].to_numpy(bool))
    sub_cells = None if cells is None else np.asarray(cells, dtype=object)[free]
    sub_dist = None if distance is None else np.asarray(distance)[free]
    names_all = None if cells is None else sorted({str(v) for v in np.asarray(cells, dtype=object)})
    table = evaluate_table(
        np.asarray(scores)[free],
        np.asarray(labels)[free],
        sub_dist,
        sub_cells,
        cell_names=names_all,
        **kw,
    )
    names = table["cell"].tolist()
    table["cell"] = [f"{c}{LEAK_FREE}" for c in names]
    warnings = []
    for w in table.attrs.get("warnings", []):
        head, sep, rest = w.partition(": ")
        if sep and head in names:
            warnings.append(f"{head}{LEAK_FREE}: {rest}")
        else:
            warnings.append(f"leak-free subset: {w}")
    table.attrs["warnings"] = warnings
    return table
