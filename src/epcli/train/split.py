"""Honest splits: validation cells AND a held-out genome region, and the checks before training."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from epcli.core.arrays import PairData
from epcli.core.errors import EpcliError, UsageError
from epcli.core.schema import PROTOTYPE_KINDS
from epcli.train.config import UNKNOWN_CELL, VAL_CELLS, VAL_REGION, TrainConfig


def labeled_mask(data: PairData) -> np.ndarray:
    """(n_pairs,) bool: pairs labeled 0 or 1."""
    return np.isin(np.asarray(data.label), (0, 1))


def chrom_names(values: np.ndarray) -> np.ndarray:
    """Chromosome names as a str array (bytes from HDF5 are decoded)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "S":
        return np.char.decode(arr, "utf-8")
    if arr.dtype.kind == "O" and arr.size and isinstance(arr.flat[0], bytes):
        return np.array([v.decode("utf-8") for v in arr.tolist()])
    return arr.astype(str)


def cell_name(data: PairData, idx: int) -> str:
    """Name of cell index ``idx`` (``unknown`` for -1)."""
    return data.cells[idx] if 0 <= idx < len(data.cells) else UNKNOWN_CELL


def check_inputs(data: PairData, cfg: TrainConfig) -> None:
    """Checks done before any work.

    Raises
    ------
    EpcliError
        No pairs, malformed arrays, no labels, a single class, mismatched window sizes.
    """
    if data.n_pairs == 0:
        raise EpcliError("the training data has no pairs")
    if data.enh_seqs.ndim != 2 or data.pro_seqs.ndim != 2:
        raise EpcliError("anchor sequences must be 2-D arrays (n, window)")
    n = data.n_pairs
    for name in ("pro_idx", "distance", "cell_idx", "label", "chrom", "enh_mid", "pro_mid"):
        if np.asarray(getattr(data, name)).shape[0] != n:
            raise EpcliError(f"pair array {name!r} has the wrong length (expected {n})")
    lab = labeled_mask(data)
    if not lab.any():
        raise EpcliError(
            f"no labeled pairs: all {n} labels are -1 (unknown)",
            hint="training needs a 'label' column of 0/1 in the BEDPE given to epcli prepare",
        )
    y = np.asarray(data.label)[lab]
    if y.min() == y.max():
        cls = "positive (1)" if y[0] == 1 else "negative (0)"
        raise EpcliError(
            f"all {y.size} labeled pairs are {cls}; training needs both classes",
            hint="add pairs of the other class (e.g. negatives sampled at matched distances)",
        )
    bad = (np.asarray(data.label) != -1) & ~lab
    if bad.any():
        raise EpcliError(
            f"{int(bad.sum())} pairs have labels other than 0, 1 or -1",
            hint="labels must be 0 (no interaction), 1 (interaction) or -1 (unknown)",
        )


@dataclass
class Split:
    """Train / validation rows of a :class:`PairData`.

    Attributes
    ----------
    train_rows : np.ndarray, shape (n_train,), int64
        Labeled pairs of training cells in the training region.
    val_rows : dict of str to np.ndarray
        ``heldout_cells`` (validation cells, validation region; only when a cell is held
        out) and ``heldout_region`` (training cells, validation region).
    description : list of str
        Human-readable lines (for the log and the model card).
    train_cells, val_cells : list of str
    region_mode : str
        ``chromosomes`` or ``blocks``.
    val_chroms : list of str
        Held-out chromosomes (chromosome mode).
    block_cuts : dict of str to int
        Per chromosome, the start (bp) of the held-out block (block mode).
    n_straddling : int
        Labeled pairs with one anchor on each side of a block boundary (dropped).
    n_unused : int
        Labeled pairs of validation cells in the training region (never fitted).
    adapt_rows : np.ndarray, shape (n_unused,), int64
        Those pairs: the motif model's warm start adapts to the validation cells on them
        (supports in the fitting part, queries in its held-out genome block) to choose how
        far a new cell's prototype may move; nothing is fitted on them.
    """

    train_rows: np.ndarray
    val_rows: dict[str, np.ndarray]
    description: list[str]
    train_cells: list[str]
    val_cells: list[str]
    region_mode: str
    val_chroms: list[str] = field(default_factory=list)
    block_cuts: dict[str, int] = field(default_factory=dict)
    n_straddling: int = 0
    n_unused: int = 0
    adapt_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no row arrays)."""
        return {
            "train_cells": self.train_cells,
            "val_cells": self.val_cells,
            "region_mode": self.region_mode,
            "val_chroms": self.val_chroms,
            "block_cuts": self.block_cuts,
            "n_train": int(self.train_rows.size),
            "n_val": {k: int(v.size) for k, v in self.val_rows.items()},
            "n_straddling": self.n_straddling,
            "n_unused": self.n_unused,
            "description": self.description,
        }


def _choose_val_cells(
    data: PairData, cfg: TrainConfig, present: list[int], desc: list[str]
) -> list[int]:
    """Validation cell indices: ``cfg.val_cells``, or one drawn (seeded) among >= 3 cells."""
    if cfg.val_cells is not None:
        unknown = [c for c in cfg.val_cells if c not in data.cells]
        if unknown:
            raise UsageError(
                "unknown validation cell(s): " + ", ".join(unknown),
                hint="cells in the data: " + ", ".join(data.cells or ["(none)"]),
            )
        val_ids = sorted({data.cells.index(c) for c in cfg.val_cells})
        if val_ids:
            desc.append("validation cells: " + ", ".join(cell_name(data, c) for c in val_ids))
        return val_ids
    known = [c for c in present if c >= 0]
    if len(known) < 3:
        return []
    lab = labeled_mask(data)
    cell_idx = np.asarray(data.cell_idx, dtype=np.int64)
    y = np.asarray(data.label)
    both = [c for c in known if {0, 1} <= set(np.unique(y[lab & (cell_idx == c)]))]
    pool = both or known
    rng = np.random.default_rng([cfg.seed, 1])
    val_ids = [int(rng.choice(pool))]
    desc.append(
        f"validation cell: {cell_name(data, val_ids[0])} (chosen automatically among "
        f"{len(known)} cells; set val_cells to choose)"
    )
    return val_ids


def _choose_val_chroms(
    chrom: np.ndarray, lab: np.ndarray, cfg: TrainConfig, desc: list[str]
) -> list[str] | None:
    """Held-out chromosomes: ``cfg.val_chroms``, or drawn (seeded) until about
    ``val_block_frac`` of the labeled pairs when >= 3 chromosomes have labels; None: blocks."""
    chroms_lab = sorted(set(chrom[lab].tolist()))
    if cfg.val_chroms:
        all_chroms = sorted(set(chrom.tolist()))
        unknown = [c for c in cfg.val_chroms if c not in all_chroms]
        if unknown:
            raise UsageError(
                "unknown validation chromosome(s): " + ", ".join(unknown),
                hint="chromosomes in the data: " + ", ".join(all_chroms),
            )
        val_chroms = sorted(set(cfg.val_chroms))
        if not set(chroms_lab) - set(val_chroms):
            raise UsageError(
                "every chromosome with labeled pairs is held out; none is left to train on",
                hint="chromosomes in the data: " + ", ".join(chroms_lab),
            )
        desc.append("held-out region: chromosomes " + ", ".join(val_chroms))
        return val_chroms
    if len(chroms_lab) < 3:
        return None
    counts = {c: int((lab & (chrom == c)).sum()) for c in chroms_lab}
    total = sum(counts.values())
    order = np.random.default_rng([cfg.seed, 2]).permutation(len(chroms_lab))
    val_chroms: list[str] = []
    acc = 0
    for i in order:
        if acc >= cfg.val_block_frac * total or len(val_chroms) == len(chroms_lab) - 1:
            break
        val_chroms.append(chroms_lab[i])
        acc += counts[chroms_lab[i]]
    val_chroms.sort()
    desc.append(
        f"held-out region: chromosomes {', '.join(val_chroms)} ({acc} of {total} labeled "
        "pairs; chosen automatically, set val_chroms to choose)"
    )
    return val_chroms


def _block_region(
    data: PairData, chrom: np.ndarray, lab: np.ndarray, cfg: TrainConfig, desc: list[str]
) -> tuple[np.ndarray, dict[str, int]]:
    """Block mode: the last ``val_block_frac`` of each chromosome's pairs by enhancer
    midpoint. Returns the region of each pair (0 train, 1 validation, 2 straddling) and
    each chromosome's cut (bp)."""
    region = np.zeros(data.n_pairs, dtype=np.int8)
    chroms_lab = sorted(set(chrom[lab].tolist()))
    enh_mid = np.asarray(data.enh_mid, dtype=np.int64)
    pro_mid = np.asarray(data.pro_mid, dtype=np.int64)
    block_cuts: dict[str, int] = {}
    for c in chroms_lab:
        on = chrom == c
        mids = np.sort(enh_mid[on & lab])
        cut = int(mids[min(int(math.floor((1 - cfg.val_block_frac) * mids.size)), mids.size - 1)])
        block_cuts[c] = cut
        e_val = enh_mid[on] >= cut
        p_val = pro_mid[on] >= cut
        region[on] = np.where(e_val & p_val, 1, np.where(~e_val & ~p_val, 0, 2))
    desc.append(
        f"held-out region: the last {cfg.val_block_frac:.0%} of each chromosome's pairs by "
        "enhancer midpoint ("
        + ", ".join(f"{c} >= {v:,}" for c, v in block_cuts.items())
        + f"), as the data spans {len(chroms_lab)} chromosome(s)"
    )
    return region, block_cuts


def make_split(data: PairData, cfg: TrainConfig) -> Split:
    """Hold out validation cells and a genome region.

    Parameters
    ----------
    data : PairData
    cfg : TrainConfig
        Uses ``val_cells``, ``val_chroms``, ``val_block_frac`` and ``seed``.

    Returns
    -------
    Split

    Raises
    ------
    UsageError
        Unknown validation cell or chromosome (the valid names are listed), or no cell /
        chromosome left for training.
    """
    lab = labeled_mask(data)
    cell_idx = np.asarray(data.cell_idx, dtype=np.int64)
    chrom = chrom_names(data.chrom)
    present = sorted({int(c) for c in np.unique(cell_idx[lab])})
    desc: list[str] = []
    val_ids = _choose_val_cells(data, cfg, present, desc)
    if not val_ids:
        desc.append(
            f"no held-out cell ({len(present)} cell(s) with labels); validating on the "
            "held-out region of the training cells only"
        )
    train_cells = [c for c in present if c not in val_ids]
    if not train_cells:
        raise UsageError(
            "every cell with labels is a validation cell; no cell is left to train on",
            hint="cells in the data: " + ", ".join(cell_name(data, c) for c in present),
        )
    in_val_cell = np.isin(cell_idx, val_ids)
    # region: 0 train, 1 validation, 2 straddling
    val_chroms = _choose_val_chroms(chrom, lab, cfg, desc)
    block_cuts: dict[str, int] = {}
    if val_chroms is None:
        mode, val_chroms = "blocks", []
        region, block_cuts = _block_region(data, chrom, lab, cfg, desc)
    else:
        mode = "chromosomes"
        region = np.isin(chrom, val_chroms).astype(np.int8)
    train = lab & ~in_val_cell & (region == 0)
    n_strad = int((lab & (region == 2)).sum())
    adapt_rows = np.flatnonzero(lab & in_val_cell & (region == 0))
    n_unused = int(adapt_rows.size)
    val_rows: dict[str, np.ndarray] = {}
    if val_ids:
        val_rows[VAL_CELLS] = np.flatnonzero(lab & in_val_cell & (region == 1))
    val_rows[VAL_REGION] = np.flatnonzero(lab & ~in_val_cell & (region == 1))
    counts = (
        f"pairs: {int(train.sum())} training, "
        + ", ".join(f"{int(v.size)} {k}" for k, v in val_rows.items())
        + f", {n_strad} straddling the region boundary (dropped)"
    )
    if n_unused:
        counts += (
            f", {n_unused} of validation cells in the training region (never fitted; only "
            "for simulated adaptation and the R_E prior)"
        )
    if int((~lab).sum()):
        counts += f", {int((~lab).sum())} unlabeled (ignored)"
    desc.append(counts)
    return Split(
        train_rows=np.flatnonzero(train),
        val_rows=val_rows,
        description=desc,
        train_cells=[cell_name(data, c) for c in train_cells],
        val_cells=[cell_name(data, c) for c in val_ids],
        region_mode=mode,
        val_chroms=val_chroms,
        block_cuts=block_cuts,
        n_straddling=n_strad,
        n_unused=n_unused,
        adapt_rows=adapt_rows,
    )


def check_training_rows(data: PairData, split: Split, cfg: TrainConfig) -> None:
    """Checks of the split before training.

    Raises
    ------
    EpcliError
        No training pairs, one class only, no validation pairs, or (prism) a training cell
        with too few labeled pairs to form an episode.
    """
    rows = split.train_rows
    hint_split = "hold out fewer pairs (val_cells, val_chroms, val_block_frac) or add data"
    if rows.size == 0:
        raise EpcliError("no training pairs are left after holding out validation", hint=hint_split)
    y = np.asarray(data.label)[rows]
    if y.min() == y.max():
        raise EpcliError(
            f"the {rows.size} training pairs are all of one class ({int(y[0])})", hint=hint_split
        )
    if sum(v.size for v in split.val_rows.values()) == 0:
        raise EpcliError("no validation pairs: the held-out region is empty", hint=hint_split)
    if cfg.model not in PROTOTYPE_KINDS:
        return
    k = cfg.support_size
    bad = []
    cells = np.asarray(data.cell_idx)[rows]
    for c in np.unique(cells):
        yc = y[cells == c]
        n_pos, n_neg = int((yc == 1).sum()), int((yc == 0).sum())
        if n_pos + n_neg < k + 1 or n_pos < 1 or n_neg < 1:
            bad.append(f"{cell_name(data, int(c))} ({n_pos} positive, {n_neg} negative)")
    if bad:
        raise EpcliError(
            f"training cell(s) with too few labeled pairs for an episode (support_size={k} "
            f"needs at least {k + 1} pairs with both classes): " + "; ".join(bad),
            hint="lower support_size, make such a cell a validation cell, or add labeled pairs",
        )
