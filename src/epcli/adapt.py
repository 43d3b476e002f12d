"""``epcli adapt``'s stage: choose the support pairs of one cell line from the input and build
its prototype (the CLI parses options and prints what this returns)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from epcli.core import schema
from epcli.core.arrays import PairData
from epcli.core.errors import EpcliError, UsageError
from epcli.inference.engine import Progress
from epcli.inference.predictor import Predictor
from epcli.io.prototype_file import Prototype


def support_of_cell(
    frame: pd.DataFrame, data: PairData, where: str, cell: str | None
) -> tuple[PairData, str]:
    """The labeled support pairs of one cell, and the cell's name.

    Parameters
    ----------
    frame : pandas.DataFrame
        The input's rows (with the ``cell`` column; ``attrs["layout"]`` for BEDPE input).
    data : PairData
        The same rows as pair data.
    where : str
        The input's name (for messages).
    cell : str, optional
        ``--cell``: selects that cell when the input holds several, or names pairs that have
        no cell column. Without it the input must hold one cell (or none: ``unnamed``).

    Raises
    ------
    EpcliError
        No ``label`` column, or every label unknown.
    UsageError
        Several cells and no ``--cell``, or a ``--cell`` the input does not hold.
    """
    if "layout" in frame.attrs and schema.COL_LABEL not in frame.attrs["layout"].columns:
        raise EpcliError(
            "the support pairs have no 'label' column; adapt needs labeled pairs (0/1)",
            path=where,
            hint="name the columns in a '#chrom1 start1 end1 chrom2 start2 end2 ... label' "
            "header line",
        )
    if (np.asarray(data.label) < 0).all():
        raise EpcliError(
            "every label of the support pairs is unknown; adapt needs labeled pairs (0/1)",
            path=where,
        )
    cells = [c for c in dict.fromkeys(frame[schema.COL_CELL]) if c != schema.MISSING]
    if cell is None:
        if len(cells) > 1:
            raise UsageError(
                f"{where} holds pairs of several cells ({', '.join(cells)})",
                hint="choose one with --cell",
            )
        return data, cells[0] if cells else "unnamed"
    if not cells:
        return data, cell
    if cell not in cells:
        raise UsageError(
            f"cell {cell!r} is not in {where} (it has {', '.join(cells)})",
            hint="use one of those names with --cell",
        )
    rows = np.flatnonzero(frame[schema.COL_CELL].to_numpy() == cell)
    return data.subset(rows), cell


def adapt(
    predictor: Predictor,
    support: PairData,
    cell: str,
    *,
    target_recall: float = 0.7,
    shots: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> Prototype:
    """The cell's prototype and thresholds (:meth:`Predictor.build_prototype`).

    Raises
    ------
    UsageError
        ``target_recall`` outside (0, 1] (:func:`~epcli.core.checks.check_target_recall`).
    """
    return predictor.build_prototype(
        support, cell, target_recall=target_recall, shots=shots, seed=seed, progress=progress
    )


def labeled_count(data: PairData, shots: int | None) -> int:
    """Pairs the prototype will be built from (for the progress bar's total)."""
    n_labeled = int((np.asarray(data.label) >= 0).sum())
    return n_labeled if shots is None else min(shots, n_labeled)
