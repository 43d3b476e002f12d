"""Training: configuration, honest splits, the episodic loop, validation, model card.

The flow of :func:`train`:

1. :func:`check_inputs` - labels present, both classes (before any work).
2. :func:`make_split` - hold out validation cells AND a genome region (whole chromosomes, or
   contiguous blocks of each chromosome when the data spans fewer than three).
3. :func:`check_training_rows` - every training cell can form an episode.
4. The loop. ``prism``: each optimizer step runs ``cells_per_step`` episodes; an episode
   draws one training cell, a stratified support set of ``support_size`` labeled pairs and a
   disjoint query batch from that cell; R_E comes from the support prototype; the loss
   (:func:`epcli.model.losses.episode_loss`) is taken on the query; HSIC (when weighted) on
   the concatenated queries against cell identity. ``crossattn``: plain BCE batches.
   ``kmer`` / ``distance``: one scikit-learn fit.
5. Validation every epoch on each validation set and cell: zero-shot AUPR (population
   prototype) and adapted AUPR (prototype from ``support_size`` labeled pairs of the cell).
   Early stopping on the mean zero-shot AUPR of the held-out cells (else the held-out region).
6. The model card: components, measured contributions, validation, collapse check; the model
   directory is written atomically by :mod:`epcli.io.modeldir`.

Determinism: the same seed and data give the same weights (per-epoch seeds, a numpy
``Generator`` for every sampling step, deterministic torch algorithms where available).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import epcli
from epcli.core.arrays import PairData, log_distance
from epcli.core.checks import check_type
from epcli.core.errors import EpcliError, UsageError
from epcli.core.schema import ALL_KINDS, MOTIF_KINDS, PROTOTYPE_KINDS, SKLEARN_KINDS
from epcli.inference.predictor import (
    make_prototype_np,
    pair_features_unique,
    resolve_device,
    score_features,
    sigmoid,
    stratified_pick,
)
from epcli.io.modeldir import check_replaceable, save_model_dir
from epcli.train.checkpoint import Checkpointer
from epcli.train.checkpoint import deferred as deferred_signals

#: Names of the validation sets.
VAL_CELLS = "heldout_cells"
VAL_REGION = "heldout_region"
#: Name used for pairs without a cell line.
UNKNOWN_CELL = "unknown"

Log = Callable[[str], None]


def _no_log(_: str) -> None:
    return None


# ============================================================================ config
@dataclass
class TrainConfig:
    """Training options (JSON round trip via :meth:`to_dict` / :meth:`from_dict`).

    Attributes
    ----------
    model : str
        ``prism`` (default: motif-grounded), ``prism-scratch`` (from-scratch encoder),
        ``crossattn``, ``motif-lr``, ``kmer`` or ``distance``.
    epochs : int
        Maximum number of epochs.
    max_time : float or None
        Wall-clock budget in seconds; training stops cleanly and keeps the best model.
    seed : int
        Seed of every random step (initialisation, sampling, augmentation, dropout).
    lr, weight_decay : float
        AdamW learning rate and weight decay.
    query_size : int
        Query pairs per episode (batch size of ``crossattn`` per episode slot).
    support_size : int
        k, labeled support pairs per episode (both classes, stratified).
    steps_per_epoch : int
        Optimizer steps per epoch (split across ranks under DDP).
    cells_per_step : int
        Episodes (cells) per optimizer step, so HSIC sees several cells.
    val_cells : list of str or None
        Cells held out for validation; None picks one automatically when >= 3 cells have
        labels; ``[]`` holds out none.
    val_chroms : list of str or None
        Chromosomes held out; None/``[]`` chooses automatically (about ``val_block_frac`` of the
        labeled pairs) when the data spans >= 3 chromosomes, else contiguous blocks.
    val_block_frac : float
        Fraction of the genome held out (the last fraction of each chromosome's pairs by
        enhancer midpoint in block mode; the target share of pairs in chromosome mode).
    val_max_pairs : int
        Validation pairs scored per cell and set (a fixed seeded subset above it).
    proto_pairs : int
        Training pairs per cell used for the cell prototypes (population prototype).
    patience : int
        Epochs without improvement of the validation AUPR before stopping.
    loss_bce, loss_rank, loss_aux_ui, loss_hsic : float
        Loss weights (HSIC off by default).
    grad_clip : float
        Gradient norm clip (0 = off).
    rc_aug : bool
        Reverse-complement augmentation (both windows of a pair, random per pair).
    amp : bool
        bf16 autocast; only takes effect on CUDA.
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    num_threads : int or None
        torch CPU threads during training (None leaves torch's setting).
    batch_size : int
        Pairs per batch when scoring (validation, prototypes).
    kmer_k : int
        k-mer length of the ``kmer`` baseline.
    """

    model: str = "prism"
    epochs: int = 30
    max_time: float | None = None
    seed: int = 0
    lr: float = 1e-3
    weight_decay: float = 0.01
    query_size: int = 64
    support_size: int = 16
    steps_per_epoch: int = 200
    cells_per_step: int = 2
    val_cells: list[str] | None = None
    val_chroms: list[str] | None = None
    val_block_frac: float = 0.2
    val_max_pairs: int = 2000
    proto_pairs: int = 256
    patience: int = 5
    loss_bce: float = 1.0
    loss_rank: float = 0.5
    loss_aux_ui: float = 0.5
    loss_hsic: float = 0.0
    grad_clip: float = 1.0
    rc_aug: bool = True
    amp: bool = True
    device: str = "auto"
    num_threads: int | None = None
    batch_size: int = 256
    kmer_k: int = 4

    def __post_init__(self) -> None:
        if self.val_cells is not None:
            self.val_cells = list(self.val_cells)
        if self.val_chroms is not None:
            self.val_chroms = list(self.val_chroms)
        self.validate()

    def validate(self) -> None:
        """Check types and ranges.

        Raises
        ------
        UsageError
            Naming the option, its value and what is allowed.
        """
        for f in dataclasses.fields(self):
            check_type("training option", f.name, getattr(self, f.name), f.type, UsageError)

        def bad(name: str, allowed: str) -> UsageError:
            return UsageError(
                f"training option {name}={getattr(self, name)!r} is not allowed", hint=allowed
            )

        if self.model not in ALL_KINDS:
            raise bad("model", "one of " + ", ".join(ALL_KINDS))
        for name in ("epochs", "steps_per_epoch", "query_size", "cells_per_step", "batch_size"):
            if getattr(self, name) < 1:
                raise bad(name, "an integer >= 1")
        if self.support_size < 2:
            raise bad("support_size", "an integer >= 2 (one pair of each class at least)")
        if self.patience < 1:
            raise bad("patience", "an integer >= 1")
        if self.seed < 0:
            raise bad("seed", "an integer >= 0")
        if self.val_max_pairs < 10 or self.proto_pairs < 2:
            raise bad("val_max_pairs" if self.val_max_pairs < 10 else "proto_pairs", ">= 10 / 2")
        if self.max_time is not None and not self.max_time > 0:
            raise bad("max_time", "a positive number of seconds, or none")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise bad("lr", "a positive number")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise bad("weight_decay" if self.weight_decay < 0 else "grad_clip", "a number >= 0")
        if not 0.0 < self.val_block_frac < 1.0:
            raise bad("val_block_frac", "a number in (0, 1)")
        for name in ("loss_bce", "loss_rank", "loss_aux_ui", "loss_hsic"):
            v = getattr(self, name)
            if v < 0 or not math.isfinite(v):
                raise bad(name, "a finite number >= 0")
        if self.loss_bce + self.loss_rank == 0:
            raise bad("loss_bce", "loss_bce and loss_rank cannot both be 0")
        dev = self.device.lower()
        if not (dev in ("auto", "cpu", "cuda") or dev.startswith("cuda:")):
            raise bad("device", "auto, cpu or cuda")
        if self.num_threads is not None and self.num_threads < 1:
            raise bad("num_threads", "an integer >= 1")
        if not 1 <= self.kmer_k <= 8:
            raise bad("kmer_k", "an integer in 1..8")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every option."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a dict; missing keys take defaults.

        Raises
        ------
        EpcliError
            Unknown keys (named, with the valid ones); :class:`UsageError` for bad values.
        """
        if not isinstance(d, dict):
            raise EpcliError(f"training config must be a JSON object, got {type(d).__name__}")
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise EpcliError(
                "training config: unknown key(s) " + ", ".join(repr(k) for k in unknown),
                hint="valid keys: " + ", ".join(valid),
            )
        return cls(**d)

    def loss_weights(self):
        """The :class:`~epcli.model.losses.LossWeights` of this config."""
        from epcli.model.losses import LossWeights

        return LossWeights(
            bce=self.loss_bce, rank=self.loss_rank, aux_ui=self.loss_aux_ui, hsic=self.loss_hsic
        )


# ============================================================================ checks
def _labeled(data: PairData) -> np.ndarray:
    return np.isin(np.asarray(data.label), (0, 1))


def _as_str(values: np.ndarray) -> np.ndarray:
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
    lab = _labeled(data)
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


# ============================================================================ splits
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
        Labeled pairs of validation cells in the training region (used by neither side).
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
    n = data.n_pairs
    lab = _labeled(data)
    cell_idx = np.asarray(data.cell_idx, dtype=np.int64)
    chrom = _as_str(data.chrom)
    present = sorted({int(c) for c in np.unique(cell_idx[lab])})
    present_names = [cell_name(data, c) for c in present]
    desc: list[str] = []

    # ---- cells
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
    else:
        known = [c for c in present if c >= 0]
        if len(known) >= 3:
            y = np.asarray(data.label)
            both = [c for c in known if {0, 1} <= set(np.unique(y[lab & (cell_idx == c)]))]
            pool = both or known
            rng = np.random.default_rng([cfg.seed, 1])
            val_ids = [int(rng.choice(pool))]
            desc.append(
                f"validation cell: {cell_name(data, val_ids[0])} (chosen automatically among "
                f"{len(known)} cells; set val_cells to choose)"
            )
        else:
            val_ids = []
    if not val_ids:
        desc.append(
            f"no held-out cell ({len(present)} cell(s) with labels); validating on the "
            "held-out region of the training cells only"
        )
    train_cells = [c for c in present if c not in val_ids]
    if not train_cells:
        raise UsageError(
            "every cell with labels is a validation cell; no cell is left to train on",
            hint="cells in the data: " + ", ".join(present_names),
        )
    in_val_cell = np.isin(cell_idx, val_ids)

    # ---- region: 0 train, 1 validation, 2 straddling
    region = np.zeros(n, dtype=np.int8)
    chroms_lab = sorted(set(chrom[lab].tolist()))
    block_cuts: dict[str, int] = {}
    val_chroms: list[str] = []
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
        mode = "chromosomes"
        desc.append("held-out region: chromosomes " + ", ".join(val_chroms))
    elif len(chroms_lab) >= 3:
        counts = {c: int((lab & (chrom == c)).sum()) for c in chroms_lab}
        total = sum(counts.values())
        order = np.random.default_rng([cfg.seed, 2]).permutation(len(chroms_lab))
        acc = 0
        for i in order:
            if acc >= cfg.val_block_frac * total or len(val_chroms) == len(chroms_lab) - 1:
                break
            val_chroms.append(chroms_lab[i])
            acc += counts[chroms_lab[i]]
        val_chroms.sort()
        mode = "chromosomes"
        desc.append(
            f"held-out region: chromosomes {', '.join(val_chroms)} ({acc} of {total} labeled "
            "pairs; chosen automatically, set val_chroms to choose)"
        )
    else:
        mode = "blocks"
        enh_mid = np.asarray(data.enh_mid, dtype=np.int64)
        pro_mid = np.asarray(data.pro_mid, dtype=np.int64)
        for c in chroms_lab:
            on = chrom == c
            mids = np.sort(enh_mid[on & lab])
            cut = int(
                mids[min(int(math.floor((1 - cfg.val_block_frac) * mids.size)), mids.size - 1)]
            )
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
    if mode == "chromosomes":
        region[np.isin(chrom, val_chroms)] = 1

    train = lab & ~in_val_cell & (region == 0)
    held_cells = lab & in_val_cell & (region == 1)
    held_region = lab & ~in_val_cell & (region == 1)
    n_strad = int((lab & (region == 2)).sum())
    n_unused = int((lab & in_val_cell & (region == 0)).sum())
    val_rows: dict[str, np.ndarray] = {}
    if val_ids:
        val_rows[VAL_CELLS] = np.flatnonzero(held_cells)
    val_rows[VAL_REGION] = np.flatnonzero(held_region)
    counts = (
        f"pairs: {int(train.sum())} training, "
        + ", ".join(f"{int(v.size)} {k}" for k, v in val_rows.items())
        + f", {n_strad} straddling the region boundary (dropped)"
    )
    if n_unused:
        counts += f", {n_unused} of validation cells in the training region (unused)"
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


# ============================================================================ episodes
@dataclass
class Episode:
    """One episode: a cell, its support rows and its query rows (indices into PairData)."""

    cell: int
    support: np.ndarray
    query: np.ndarray


class EpisodeSampler:
    """Draws episodes from the training rows.

    Parameters
    ----------
    label, cell_idx : np.ndarray, shape (n_pairs,)
    rows : np.ndarray
        Training rows (labeled).
    support_size, query_size : int
    """

    def __init__(
        self,
        label: np.ndarray,
        cell_idx: np.ndarray,
        rows: np.ndarray,
        support_size: int,
        query_size: int,
    ) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        lab = np.asarray(label)[rows]
        cells = np.asarray(cell_idx)[rows]
        self.cells = np.unique(cells)
        self.rows = {int(c): rows[cells == c] for c in self.cells}
        self.pos = {int(c): rows[(cells == c) & (lab == 1)] for c in self.cells}
        self.neg = {int(c): rows[(cells == c) & (lab == 0)] for c in self.cells}
        self.k = int(support_size)
        self.q = int(query_size)

    def draw_cells(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` cells, without repetition while cells last."""
        m = self.cells.size
        if n <= m:
            return rng.choice(self.cells, size=n, replace=False)
        return np.concatenate([rng.permutation(self.cells), rng.choice(self.cells, size=n - m)])

    def episode(self, rng: np.random.Generator, cell: int) -> Episode:
        """A stratified support set and a disjoint random query batch of ``cell``."""
        c = int(cell)
        sp, sn = stratified_pick(rng, self.pos[c], self.neg[c], self.k)
        support = np.concatenate([sp, sn])
        allr = self.rows[c]
        cand = rng.choice(allr, size=min(self.q + support.size, allr.size), replace=False)
        query = cand[~np.isin(cand, support)][: self.q]
        return Episode(cell=c, support=support, query=query)

    def sample(self, rng: np.random.Generator, n_episodes: int) -> list[Episode]:
        """``n_episodes`` episodes of distinct cells (while cells last)."""
        return [self.episode(rng, c) for c in self.draw_cells(rng, n_episodes)]


# ============================================================================ result
@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    out_dir : Path or None
        The model directory (None on DDP ranks other than 0).
    fingerprint : str or None
    best_epoch : int
    best_score : float or None
        Best early-stopping value (mean zero-shot validation AUPR).
    epochs_run : int
    stopped : str
        ``epochs``, ``early_stop`` or ``max_time``.
    history : list of dict
    model_card : dict
    split : Split
    """

    out_dir: Path | None
    fingerprint: str | None
    best_epoch: int
    best_score: float | None
    epochs_run: int
    stopped: str
    history: list[dict[str, Any]]
    model_card: dict[str, Any]
    split: Split


# ============================================================================ metrics
def aupr(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision (AUPR); NaN when ``y`` lacks a class."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(y)
    if y.size == 0 or y.min() == y.max():
        return float("nan")
    return float(average_precision_score(y, np.asarray(score, dtype=np.float64)))


def _nanmean(values) -> float:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _fmt(x: float | None) -> str:
    return "NA" if x is None or not np.isfinite(x) else f"{x:.3f}"


# ============================================================================ validation
@dataclass
class _CellPlan:
    name: str
    idx: np.ndarray  # positions within the set's (capped) rows
    support: np.ndarray | None  # positions (subset of idx) for the adapted prototype
    rest: np.ndarray | None


@dataclass
class _ValPlan:
    rows: np.ndarray
    cells: list[_CellPlan]


def _plan_validation(data: PairData, split: Split, cfg: TrainConfig) -> dict[str, _ValPlan]:
    """Fixed (seeded) validation subsets and adapted-support picks, made once."""
    plans: dict[str, _ValPlan] = {}
    label = np.asarray(data.label)
    cells_all = np.asarray(data.cell_idx)
    for name, rows in split.val_rows.items():
        if rows.size == 0:
            continue
        rng = np.random.default_rng([cfg.seed, 3, len(plans)])
        keep = []
        for c in np.unique(cells_all[rows]):
            rc = rows[cells_all[rows] == c]
            if rc.size > cfg.val_max_pairs:
                rc = np.sort(rng.choice(rc, size=cfg.val_max_pairs, replace=False))
            keep.append(rc)
        sel = np.sort(np.concatenate(keep))
        cplans = []
        y = label[sel]
        for c in np.unique(cells_all[sel]):
            idx = np.flatnonzero(cells_all[sel] == c)
            pos, neg = idx[y[idx] == 1], idx[y[idx] == 0]
            support = rest = None
            k = cfg.support_size
            if pos.size >= 2 and neg.size >= 2 and idx.size >= k + 2:
                sp, sn = stratified_pick(rng, pos, neg, k)
                support = np.sort(np.concatenate([sp, sn]))
                rest = np.setdiff1d(idx, support)
                yr = y[rest]
                if yr.min() == yr.max():
                    support = rest = None
            cplans.append(_CellPlan(cell_name(data, int(c)), idx, support, rest))
        plans[name] = _ValPlan(sel, cplans)
    return plans


def _proto_rows(data: PairData, rows: np.ndarray, cfg: TrainConfig) -> dict[int, np.ndarray]:
    """Per training cell, the (seeded, stratified) rows used for its prototype."""
    rng = np.random.default_rng([cfg.seed, 4])
    label = np.asarray(data.label)
    cells = np.asarray(data.cell_idx)[rows]
    out = {}
    for c in np.unique(cells):
        rc = rows[cells == c]
        if rc.size > cfg.proto_pairs:
            sp, sn = stratified_pick(rng, rc[label[rc] == 1], rc[label[rc] == 0], cfg.proto_pairs)
            rc = np.sort(np.concatenate([sp, sn]))
        out[int(c)] = rc
    return out


def compute_cell_prototypes(
    model, data: PairData, proto_rows: dict[int, np.ndarray], batch_size: int
) -> dict[int, np.ndarray]:
    """Prototype (2, env_dim) of each training cell from its prototype rows."""
    sel = np.concatenate(list(proto_rows.values()))
    feats = pair_features_unique(model, data.subset(sel), batch_size=batch_size)
    if feats["env"] is None:
        return {}
    out = {}
    a = 0
    for c, rc in proto_rows.items():
        b = a + rc.size
        out[c] = make_prototype_np(model, feats["env"][a:b], np.asarray(data.label)[rc])
        a = b
    return out


def _validate_torch(
    model, data: PairData, plans: dict[str, _ValPlan], cfg: TrainConfig, detail: bool = False
) -> dict[str, Any]:
    """Validation metrics of a torch model (population prototype already set)."""
    import torch

    from epcli.model.losses import hsic

    label = np.asarray(data.label)
    cells_all = np.asarray(data.cell_idx)
    res: dict[str, Any] = {}
    for name, plan in plans.items():
        sub = data.subset(plan.rows)
        feats = pair_features_unique(model, sub, batch_size=cfg.batch_size, keep_ui_feat=True)
        y = label[plan.rows]
        zs = score_features(model, feats, None)
        per_cell: dict[str, dict[str, Any]] = {}
        for cp in plan.cells:
            d: dict[str, Any] = {
                "n": int(cp.idx.size),
                "n_pos": int((y[cp.idx] == 1).sum()),
                "prevalence": float((y[cp.idx] == 1).mean()),
                "aupr_zero_shot": aupr(y[cp.idx], zs["logit"][cp.idx]),
                "aupr_adapted": float("nan"),
                "aupr_u_i_rest": float("nan"),
                "aupr_zero_shot_rest": float("nan"),
            }
            if cp.support is not None:
                proto = (
                    make_prototype_np(model, feats["env"][cp.support], y[cp.support])
                    if (feats["env"] is not None)
                    else None
                )
                rest_feats = {
                    "u_i": feats["u_i"][cp.rest],
                    "env": None if feats["env"] is None else feats["env"][cp.rest],
                }
                ad = score_features(model, rest_feats, proto)
                d["aupr_adapted"] = aupr(y[cp.rest], ad["logit"])
                d["aupr_u_i_rest"] = aupr(y[cp.rest], ad["u_i"])
                d["aupr_zero_shot_rest"] = aupr(y[cp.rest], zs["logit"][cp.rest])
                if detail:
                    d["_adapted"] = ad
            per_cell[cp.name] = d
        h = float("nan")
        cells_here = cells_all[plan.rows]
        if np.unique(cells_here).size >= 2 and feats["ui_feat"] is not None:
            rng = np.random.default_rng([cfg.seed, 5])
            pick = np.sort(rng.choice(plan.rows.size, size=min(512, plan.rows.size), replace=False))
            _, inv = np.unique(cells_here[pick], return_inverse=True)
            onehot = np.eye(int(inv.max()) + 1, dtype=np.float32)[inv.reshape(-1)]
            with torch.no_grad():
                h = float(hsic(torch.from_numpy(feats["ui_feat"][pick]), torch.from_numpy(onehot)))
        res[name] = {
            "cells": per_cell,
            "aupr_zero_shot": _nanmean(d["aupr_zero_shot"] for d in per_cell.values()),
            "aupr_adapted": _nanmean(d["aupr_adapted"] for d in per_cell.values()),
            "aupr_u_i": _nanmean(d["aupr_u_i_rest"] for d in per_cell.values()),
            "aupr_zero_shot_rest": _nanmean(
                d.get("aupr_zero_shot_rest") for d in per_cell.values()
            ),
            "hsic": h,
            "prevalence": float((y == 1).mean()),
            "n": int(plan.rows.size),
        }
        if detail:
            res[name]["_feats"] = feats
            res[name]["_zero_shot"] = zs
    return res


def _primary_set(val: dict[str, Any]) -> str | None:
    """The validation set early stopping watches."""
    for name in (VAL_CELLS, VAL_REGION):
        if name in val and np.isfinite(val[name]["aupr_zero_shot"]):
            return name
    return None


# ============================================================================ torch step
def _make_step_module(model, kind: str):
    """A module whose single forward runs every episode of one optimizer step (for DDP)."""
    import torch
    from torch import nn

    class _Step(nn.Module):
        def __init__(self, m) -> None:
            super().__init__()
            self.model = m

        def forward(
            self,
            enh: torch.Tensor,
            enh_inv: torch.Tensor,
            pro: torch.Tensor,
            pro_inv: torch.Tensor,
            ld: torch.Tensor,
            labels: torch.Tensor,
            episode: torch.Tensor,
            is_support: torch.Tensor,
        ) -> dict[str, torch.Tensor]:
            m = self.model
            # each distinct (anchor, orientation) of the step is encoded once
            tok_e = m.encode_enhancers(enh)[enh_inv]
            tok_p = m.encode_promoters(pro)[pro_inv]
            f = m.pair_features(tok_e, tok_p, ld)
            if kind not in PROTOTYPE_KINDS:
                return {"logit": f["u_i"], "u_i": f["u_i"], "ui_feat": f["ui_feat"]}
            env = f["env"]
            q = ~is_support
            n_ep = int(episode.max()) + 1
            protos = torch.stack(
                [
                    m.make_prototype(
                        env[is_support & (episode == e)], labels[is_support & (episode == e)]
                    )
                    for e in range(n_ep)
                ]
            )
            r_e = m.r_e(env[q], protos[episode[q]])
            u = f["u_i"][q]
            return {
                "logit": (u - r_e) / m.temperature(),
                "u_i": u,
                "r_e": r_e,
                "ui_feat": f["ui_feat"][q],
            }

    return _Step(model)


def _batch_codes(
    data: PairData, rows: np.ndarray, rng: np.random.Generator, rc_aug: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct anchor windows of a batch with random reverse complement, and log distance.

    Each pair is flipped (both windows) with probability 1/2. Windows are de-duplicated over
    (anchor, orientation), so an anchor used by several pairs of the step is encoded once.

    Returns
    -------
    enh : np.ndarray, shape (Ue, Le), uint8
    enh_inv : np.ndarray, shape (B,), int64
        Row of ``enh`` for each pair.
    pro : np.ndarray, shape (Up, Lp), uint8
    pro_inv : np.ndarray, shape (B,), int64
    log_dist : np.ndarray, shape (B,), float32
    """
    from epcli.model.encoder import reverse_complement

    flip = (rng.random(rows.size) < 0.5) if rc_aug else np.zeros(rows.size, bool)
    out = []
    for seqs, idx in ((data.enh_seqs, data.enh_idx), (data.pro_seqs, data.pro_idx)):
        key = np.asarray(idx)[rows] * 2 + flip
        uniq, inv = np.unique(key, return_inverse=True)
        codes = seqs[uniq // 2]
        rc = (uniq % 2).astype(bool)
        if rc.any():
            codes[rc] = reverse_complement(codes[rc])
        out += [codes, inv.reshape(-1).astype(np.int64)]
    return out[0], out[1], out[2], out[3], log_distance(np.asarray(data.distance)[rows])


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank, 11]).generate_state(1)[0])


# ============================================================================ train
def train(
    data: PairData,
    tcfg: TrainConfig,
    mcfg: Any,
    out_dir: str | os.PathLike,
    log: Log | None = None,
    resume: bool | str | os.PathLike = False,
    force: bool = False,
    data_files: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train a model and write its model directory.

    Parameters
    ----------
    data : PairData
        Pairs with labels (0/1; -1 rows are ignored) and cells.
    tcfg : TrainConfig
    mcfg : ModelConfig
        Architecture of a torch model (its ``kind`` is set to ``tcfg.model``); ignored by
        ``kmer`` / ``distance``.
    out_dir : path
        Model directory to write (atomically).
    log : callable, optional
        Receives one line per event (the CLI prints them on stderr); silent when None.
    resume : bool or path
        Continue the run whose checkpoint is in ``out_dir`` (a path must name ``out_dir``):
        weights, optimizer, RNG states and position, from the last checkpoint
        (:mod:`epcli.train.checkpoint`); ``tcfg.epochs`` is the total number of epochs.
    force : bool
        Replace an existing ``out_dir`` (implied when resuming into ``out_dir``).
    data_files : list of str, optional
        Names of the training files, recorded in ``config.json``.
    progress : callable, optional
        Called after each optimizer step with the steps done since epoch 0 (torch models,
        rank 0 only).

    Returns
    -------
    TrainResult

    Raises
    ------
    EpcliError
        Bad data (no labels, one class, too few pairs for an episode, ...).
    UsageError
        Bad options (unknown validation names, CUDA requested but absent, existing output).
    """
    log = log or _no_log
    out = Path(out_dir)
    check_inputs(data, tcfg)
    resume_dir: Path | None = None
    if resume:
        resume_dir = out if resume is True else Path(resume)
        if tcfg.model in SKLEARN_KINDS:
            raise UsageError(f"--resume applies to torch models, not {tcfg.model!r}")
        if not (resume_dir / "train_state.pt").is_file():
            raise UsageError(
                "cannot resume: no training state (train_state.pt) in the model directory",
                path=resume_dir,
                hint="train without --resume first",
            )
        if resume_dir.resolve() != out.resolve():
            raise UsageError("--resume continues the model directory given with -o", path=out)
    from epcli.io.files import check_output_path

    check_output_path(  # the one output check: not an input, not a foreign directory
        out,
        force or resume_dir is not None,
        inputs=data_files or (),
        what="model directory",
        no_stdout="must be a directory on disk",
        directory=True,
        replaceable=None if resume_dir is not None else check_replaceable,
    )
    split = make_split(data, tcfg)
    for line in split.description:
        log(line)
    check_training_rows(data, split, tcfg)
    windows = {"enhancer": int(data.enh_seqs.shape[1]), "promoter": int(data.pro_seqs.shape[1])}
    if tcfg.model in SKLEARN_KINDS:
        if _dist_info()[1] != 0:  # under torchrun only rank 0 fits a baseline
            return TrainResult(None, None, 1, None, 1, "epochs", [], {}, split)
        return _train_sklearn(data, tcfg, split, out, windows, log, force, data_files, mcfg)
    return _train_torch(
        data, tcfg, mcfg, split, out, windows, log, resume_dir, force, data_files, progress
    )


# ---------------------------------------------------------------------------- sklearn
def _distance_auprs(data: PairData, split: Split, cfg: TrainConfig, plans) -> dict[str, Any]:
    """AUPR of the distance-only baseline (fit on the training rows) per set and cell."""
    from epcli.model.baselines import DistanceBaseline

    base = DistanceBaseline(seed=cfg.seed).fit(data, rows=split.train_rows)
    label = np.asarray(data.label)
    out: dict[str, Any] = {}
    for name, plan in plans.items():
        logit = base.logit(data, rows=plan.rows)
        y = label[plan.rows]
        cells = {cp.name: aupr(y[cp.idx], logit[cp.idx]) for cp in plan.cells}
        out[name] = {"cells": cells, "mean": _nanmean(cells.values())}
    return out


def _log_validation_summary(val: dict[str, Any], log: Log, prototypes: bool) -> None:
    """One line per validation set: the kept model's AUPR beside distance and prevalence.

    ``val`` is the model card's ``validation`` dict (``aupr_zero_shot``, ``aupr_adapted``,
    ``distance_aupr``, ``prevalence``, ``n`` per set); the adapted AUPR is shown only for a
    model with prototypes (``prototypes``).
    """
    for name, v in val.items():
        parts = [f"zero-shot AUPR {_fmt(v['aupr_zero_shot'])}"]
        if prototypes:
            parts.append(f"adapted {_fmt(v.get('aupr_adapted'))}")
        parts.append(f"distance baseline {_fmt(v['distance_aupr'])}")
        log(
            f"kept model on {name} (n {v['n']}, prevalence {_fmt(v['prevalence'])}): "
            + ", ".join(parts)
        )


def _collapse_check(prob: np.ndarray, y: np.ndarray | None = None) -> dict[str, Any]:
    """Collapse detector on validation probabilities.

    Collapsed when the scores are nearly constant (std < 1e-3), or when every pair falls in
    one class at threshold 0.5 AND the ranking is barely better than chance (pooled AUPR
    below ``prevalence + 0.1 * (1 - prevalence)``; undefined AUPR counts as chance). A
    one-class prediction alone is recorded (``single_class_at_0_5``) but is not a collapse:
    on imbalanced data a well-ranking model often puts every probability below 0.5, and
    ``epcli adapt`` calibrates the threshold.

    Parameters
    ----------
    prob : np.ndarray, shape (n,)
    y : np.ndarray, shape (n,), optional
        Labels 0/1 of the same pairs.
    """
    prob = np.asarray(prob, dtype=np.float64)
    std = float(prob.std()) if prob.size else 0.0
    frac = float((prob >= 0.5).mean()) if prob.size else float("nan")
    single = bool(prob.size and frac in (0.0, 1.0))
    a = aupr(y, prob) if y is not None and len(y) == prob.size else float("nan")
    prev = float((np.asarray(y) == 1).mean()) if y is not None and len(y) else float("nan")
    chance = not np.isfinite(a) or a < prev + 0.1 * (1 - prev)
    reasons = []
    if std < 1e-3:
        reasons.append(f"validation scores are nearly constant (std {std:.2e} < 1e-3)")
    if single and chance:
        cls = "positive" if frac == 1.0 else "negative"
        reasons.append(
            f"every validation pair is predicted {cls} at threshold 0.5 and the ranking is "
            f"near chance (AUPR {_fmt(a)}, prevalence {_fmt(prev)})"
        )
    return {
        "collapsed": bool(reasons),
        "score_std": std,
        "fraction_predicted_positive": frac,
        "single_class_at_0_5": single,
        "aupr": a,
        "prevalence": prev,
        "reasons": reasons,
    }


def _train_sklearn(data, cfg, split, out, windows, log, force, data_files, mcfg) -> TrainResult:
    from epcli.model.baselines import DistanceBaseline, KmerBaseline

    t0 = time.time()
    if cfg.model == "motif-lr":
        from epcli.model.motif_lr import MotifLRBaseline
        from epcli.motifs import load_motifs

        spec = getattr(mcfg, "motifs", None) or (mcfg or {}).get("motifs", "jaspar2024")
        base = MotifLRBaseline(load_motifs(spec), seed=cfg.seed)
    elif cfg.model == "kmer":
        base = KmerBaseline(k=cfg.kmer_k, seed=cfg.seed)
    else:
        base = DistanceBaseline(seed=cfg.seed)
    log(f"fitting the {cfg.model} baseline on {split.train_rows.size} training pairs")
    base.fit(data, rows=split.train_rows)
    plans = _plan_validation(data, split, cfg)
    dist = _distance_auprs(data, split, cfg, plans)
    label = np.asarray(data.label)
    val: dict[str, Any] = {}
    all_prob: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, plan in plans.items():
        logit = base.logit(data, rows=plan.rows)
        y = label[plan.rows]
        cells = {}
        for cp in plan.cells:
            cells[cp.name] = {
                "n": int(cp.idx.size),
                "n_pos": int((y[cp.idx] == 1).sum()),
                "prevalence": float((y[cp.idx] == 1).mean()),
                "aupr_zero_shot": aupr(y[cp.idx], logit[cp.idx]),
                "aupr_adapted": None,
                "distance_aupr": dist[name]["cells"][cp.name],
            }
        val[name] = {
            "cells": cells,
            "aupr_zero_shot": _nanmean(c["aupr_zero_shot"] for c in cells.values()),
            "aupr_adapted": None,
            "prevalence": float((y == 1).mean()),
            "n": int(plan.rows.size),
            "distance_aupr": dist[name]["mean"],
        }
        all_prob[name] = (sigmoid(logit), y)
    primary = _primary_set(val)
    score = val[primary]["aupr_zero_shot"] if primary else float("nan")
    prob, yp = all_prob[primary] if primary else (np.zeros(0), None)
    collapse = _collapse_check(prob, yp)
    if collapse["collapsed"]:
        log("WARNING: MODEL COLLAPSED: " + "; ".join(collapse["reasons"]))
    row: dict[str, Any] = {"epoch": 1, "seconds": round(time.time() - t0, 3)}
    for name, v in val.items():
        row[f"{name}_zero_shot"] = v["aupr_zero_shot"]
    log(
        f"{cfg.model} baseline: "
        + ", ".join(f"{k} AUPR {_fmt(v['aupr_zero_shot'])}" for k, v in val.items())
    )
    card = {
        "model_kind": cfg.model,
        "epcli_version": epcli.__version__,
        "components": {
            "distance": {"enabled": True},
            "kmer_counts": {"enabled": cfg.model == "kmer", "k": cfg.kmer_k},
            "motif_scores": {"enabled": cfg.model == "motif-lr"},
        },
        "validation": val,
        "early_stopping": {"set": primary, "metric": "mean zero-shot AUPR", "best_value": score},
        "train": _train_summary(data, split),
        "collapse": collapse,
        "collapsed": collapse["collapsed"],
        "split": split.to_dict(),
    }
    if cfg.model == "motif-lr":
        card["motif_set"] = {
            k: v for k, v in base.motifs.describe().items() if k not in ("ids", "names")
        }
        card["top_motifs"] = base.top_terms(20)
        card["C"] = base.C_
    fp = save_model_dir(
        out,
        kind=cfg.model,
        model_config=None,
        train_config=cfg.to_dict(),
        windows=windows,
        model_card=card,
        history=[row],
        params=base.to_json(),
        data_files=data_files,
        split=split.to_dict(),
        force=force,
    )
    card["fingerprint"] = fp
    _log_validation_summary(val, log, prototypes=False)
    log(f"wrote {out} (fingerprint {fp})")
    return TrainResult(out, fp, 1, score, 1, "epochs", [row], card, split)


def _train_summary(data: PairData, split: Split) -> dict[str, Any]:
    y = np.asarray(data.label)[split.train_rows]
    return {
        "pairs": int(split.train_rows.size),
        "n_pos": int((y == 1).sum()),
        "prevalence": float((y == 1).mean()),
        "cells": split.train_cells,
    }


# ---------------------------------------------------------------------------- torch
def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def _train_torch(
    data: PairData,
    cfg: TrainConfig,
    mcfg: Any,
    split: Split,
    out: Path,
    windows: dict[str, int],
    log: Log,
    resume_dir: Path | None,
    force: bool,
    data_files: list[str] | None,
    progress: Callable[[int], None] | None = None,
) -> TrainResult:
    import torch

    from epcli.model.config import ModelConfig
    from epcli.model.registry import build_model

    if not isinstance(mcfg, ModelConfig):
        mcfg = ModelConfig.from_dict(dict(mcfg or {}))
    if mcfg.kind != cfg.model:
        mcfg = dataclasses.replace(mcfg, kind=cfg.model)
    mcfg, builder = _motif_builder(mcfg, resume_dir, log, build_model)
    world, rank, local_rank = _dist_info()
    device = resolve_device(cfg.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if rank != 0:
        log = _no_log
        progress = None
    use_amp = bool(cfg.amp and device.type == "cuda" and torch.cuda.is_bf16_supported())

    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    dist_created = False
    stack = contextlib.ExitStack()
    try:
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        if device.type == "cpu":  # cheap on CPU; on CUDA it would slow some kernels
            torch.use_deterministic_algorithms(True, warn_only=True)
        if world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
                dist_created = True
        if device.type == "cuda":
            name = torch.cuda.get_device_name(device)
            log(f"device: {device} ({name}){', bf16 autocast' if use_amp else ''}")
        else:
            log(f"device: cpu ({torch.get_num_threads()} thread(s))")
        if world > 1:
            log(f"distributed: {world} processes")
        stack.enter_context(deferred_signals())  # SIGINT/SIGTERM: finish the step, save
        return _torch_loop(
            data,
            cfg,
            mcfg,
            split,
            out,
            windows,
            log,
            resume_dir,
            force,
            data_files,
            device,
            use_amp,
            world,
            rank,
            builder,
            progress=progress,
        )
    finally:
        stack.close()
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        if dist_created:
            import torch.distributed as dist

            dist.destroy_process_group()


def _motif_builder(mcfg, resume_dir: Path | None, log: Log, build_model):
    """Resolve a motif model's motif set and a model builder that loads it.

    For ``prism``, the motif set named by ``mcfg.motifs`` is loaded and its IDs, names, width
    and checksum go into the config (resuming takes them from the model directory instead);
    the returned builder initialises the PWM layer from it. Other kinds pass through.

    Returns
    -------
    mcfg : ModelConfig
    builder : callable ``(mcfg, seed) -> model``
    """
    if mcfg.kind not in MOTIF_KINDS:
        return mcfg, build_model
    if resume_dir is not None:  # the PWMs come back with the checkpoint's weights
        if mcfg.motif_ids is None:
            from epcli.train.checkpoint import saved_configs

            saved = saved_configs(resume_dir).get("model") or {}
            keys = ("motif_ids", "motif_names", "motif_width", "motif_checksum", "sparsity")
            mcfg = dataclasses.replace(mcfg, **{k: saved[k] for k in keys if k in saved})
        return mcfg, build_model
    from epcli.motifs import load_motifs

    t0 = time.time()
    ms = load_motifs(mcfg.motifs)
    mcfg = dataclasses.replace(
        mcfg,
        motif_ids=ms.ids,
        motif_names=ms.names,
        motif_width=ms.max_length,
        motif_checksum=ms.checksum(),
    )
    src = ms.release or ms.path
    dt = time.time() - t0
    log(f"motifs: {len(ms)} matrices from {src} (checksum {ms.checksum()}, {dt:.1f} s)")
    weights, lengths, _ = ms.log_odds_tensor()

    def builder(cfg, seed=None):
        model = build_model(cfg, seed=seed)
        model.set_motifs(weights, lengths)
        return model

    return mcfg, builder


def _prepare_motif_model(model, data: PairData, rows: np.ndarray, log: Log) -> dict[str, Any]:
    """Scan the training windows once, then fit U_I full-batch (the sparse warm start).

    The penalty is chosen on the last 20% of each chromosome's training pairs by enhancer
    midpoint (a genome block inside the training rows; validation rows are never used).

    Returns
    -------
    dict
        The warm start's choices (for the model card).
    """
    from epcli.model.motif_fit import warm_start

    t0 = time.time()
    rows = np.asarray(rows)
    ue, ei = np.unique(np.asarray(data.enh_idx)[rows], return_inverse=True)
    up, pi = np.unique(np.asarray(data.pro_idx)[rows], return_inverse=True)
    chrom = np.asarray(data.chrom)[rows].astype(str)
    mid = np.asarray(data.enh_mid)[rows]
    block = np.zeros(rows.size, bool)
    for c in np.unique(chrom):
        m = chrom == c
        block[m] = mid[m] >= np.quantile(mid[m], 0.8)
    res = warm_start(
        model,
        data.enh_seqs[ue],
        data.pro_seqs[up],
        ei.reshape(-1),
        pi.reshape(-1),
        log_distance(np.asarray(data.distance)[rows]),
        np.asarray(data.label)[rows].astype(np.float32),
        np.asarray(data.cell_idx)[rows],
        block,
        log=log,
    )
    n = ue.size + up.size
    log(
        f"scanned {n:,} training windows once and fitted U_I full-batch in "
        f"{time.time() - t0:.1f} s: L1 {res.sparsity:.3g}, {res.active_motifs} active motifs"
    )
    return {
        "sparsity": res.sparsity,
        "path": res.path,
        "active_motifs": res.active_motifs,
        "re_scale": res.re_scale,
    }


def _torch_loop(
    data,
    cfg,
    mcfg,
    split,
    out,
    windows,
    log,
    resume_dir,
    force,
    data_files,
    device,
    use_amp,
    world,
    rank,
    build_model,
    progress: Callable[[int], None] | None = None,
) -> TrainResult:
    import torch
    import torch.nn.functional as F

    kind = cfg.model
    model = build_model(mcfg, seed=cfg.seed).to(device)
    warm: dict[str, Any] | None = None
    if hasattr(model, "prune_scan"):
        model.prune_scan = False  # every motif until training ends (the active set changes)
    if hasattr(model, "fit_normalization") and resume_dir is None:
        warm = _prepare_motif_model(model, data, split.train_rows, log)
        model.cfg.sparsity = warm["sparsity"]
        mcfg = model.cfg
    step_mod = _make_step_module(model, kind)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    weights = cfg.loss_weights()
    n_params = sum(p.numel() for p in model.parameters())
    log(
        f"model: {kind}, {n_params:,} parameters, windows {windows['enhancer']}/"
        f"{windows['promoter']} bp"
    )

    history: list[dict[str, Any]] = []
    start_epoch = 0
    best_value = -math.inf
    best_epoch = -1
    bad_epochs = 0
    best_state: dict[str, Any] | None = None
    # ---- checkpoints (epcli.train.checkpoint): the model directory is ours from here on
    ckpt = Checkpointer(
        out,
        kind=kind,
        train_config=cfg.to_dict(),
        model_config=mcfg.to_dict(),
        windows=windows,
        data=data,
        data_files=data_files,
        split=split.to_dict(),
        rank=rank,
        world=world,
        device=device,
        log=log,
    )
    resumed = ckpt.resume(model, opt) if resume_dir is not None else None
    if resumed is not None:
        start_epoch, history = resumed.start_epoch, resumed.history
        best_value, best_epoch = resumed.best_value, resumed.best_epoch
        bad_epochs, best_state = resumed.bad_epochs, resumed.best_state
    ckpt.begin(resuming=resumed is not None)

    ddp = step_mod
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        unused = not (kind in PROTOTYPE_KINDS and mcfg.use_re) or kind == "prism"
        ddp = DistributedDataParallel(
            step_mod,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=unused,
        )

    sampler = EpisodeSampler(
        data.label, data.cell_idx, split.train_rows, cfg.support_size, cfg.query_size
    )
    plans = _plan_validation(data, split, cfg)
    proto_rows = _proto_rows(data, split.train_rows, cfg)
    label_all = np.asarray(data.label)
    cell_all = np.asarray(data.cell_idx)
    steps = -(-cfg.steps_per_epoch // world)
    t_start = time.time()
    stopped = "epochs"
    epoch = start_epoch - 1
    is_prism = kind in PROTOTYPE_KINDS

    def time_up() -> bool:
        flag = cfg.max_time is not None and time.time() - t_start >= cfg.max_time
        if world > 1:
            import torch.distributed as dist

            t = torch.tensor([1.0 if flag else 0.0], device=device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = bool(t.item() > 0)
        return flag

    for epoch in range(start_epoch, cfg.epochs):
        t_ep = time.time()
        rng = np.random.default_rng(_epoch_seed(cfg.seed, epoch, rank))
        torch.manual_seed(_epoch_seed(cfg.seed, epoch, rank))
        model.train()
        first_step, sums, n_steps, n_pairs_seen = ckpt.restore_step(resumed, epoch, rng)
        partial = False
        for step_i in range(first_step, steps):
            ckpt.stop_if_requested(  # SIGINT/SIGTERM: save this position and stop
                epoch=epoch,
                step=step_i,
                rng=rng,
                sums=sums,
                n_steps=n_steps,
                n_pairs_seen=n_pairs_seen,
                model=model,
                opt=opt,
                history=history,
                best_value=best_value,
                best_epoch=best_epoch,
                bad_epochs=bad_epochs,
                best_state=best_state,
            )
            if time_up():
                partial = True
                break
            if is_prism:
                eps = sampler.sample(rng, cfg.cells_per_step)
                rows = np.concatenate([np.concatenate([e.support, e.query]) for e in eps])
                ep_id = np.concatenate(
                    [np.full(e.support.size + e.query.size, i) for i, e in enumerate(eps)]
                )
                is_sup = np.concatenate(
                    [
                        np.r_[np.ones(e.support.size, bool), np.zeros(e.query.size, bool)]
                        for e in eps
                    ]
                )
            else:
                rows = rng.choice(
                    split.train_rows,
                    size=min(cfg.cells_per_step * cfg.query_size, split.train_rows.size),
                    replace=False,
                )
                ep_id = np.zeros(rows.size, np.int64)
                is_sup = np.zeros(rows.size, bool)
            enh, enh_inv, pro, pro_inv, ld = _batch_codes(data, rows, rng, cfg.rc_aug)
            lab_t = torch.from_numpy(label_all[rows].astype(np.int64)).to(device)
            ep_t = torch.from_numpy(ep_id.astype(np.int64)).to(device)
            sup_t = torch.from_numpy(is_sup).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                outd = ddp(
                    torch.from_numpy(enh).to(device),
                    torch.from_numpy(enh_inv).to(device),
                    torch.from_numpy(pro).to(device),
                    torch.from_numpy(pro_inv).to(device),
                    torch.from_numpy(ld).to(device),
                    lab_t,
                    ep_t,
                    sup_t,
                )
            outd = {k: v.float() for k, v in outd.items()}
            yq = lab_t[~sup_t]
            if is_prism:
                q_ep = ep_t[~sup_t]
                losses, parts_list = [], []
                w0 = dataclasses.replace(weights, hsic=0.0)
                for i in range(len(eps)):
                    m = q_ep == i
                    lo, pa = _episode_loss({k: v[m] for k, v in outd.items()}, yq[m], w0)
                    losses.append(lo)
                    parts_list.append(pa)
                loss = torch.stack(losses).mean()
                parts = {k: float(np.mean([p[k] for p in parts_list])) for k in parts_list[0]}
                if weights.hsic > 0:
                    from epcli.model.losses import hsic

                    cells_q = cell_all[rows][~is_sup]
                    _, inv = np.unique(cells_q, return_inverse=True)
                    onehot = torch.from_numpy(
                        np.eye(int(inv.max()) + 1, dtype=np.float32)[inv.reshape(-1)]
                    ).to(device)
                    h = hsic(outd["ui_feat"], onehot)
                    loss = loss + weights.hsic * h
                    parts["hsic"] = float(h.detach())
                    parts["total"] = float(loss.detach())
            else:
                loss = F.binary_cross_entropy_with_logits(outd["logit"], yq.float())
                parts = {"bce": float(loss.detach()), "total": float(loss.detach())}
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if hasattr(model, "proximal_step"):  # L1 sparsity as exact zeros
                model.proximal_step(opt)
                parts["l1"] = float(model.regularization().detach())
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            n_steps += 1
            n_pairs_seen += rows.size
            if progress is not None:
                progress(epoch * steps + n_steps)
        train_secs = time.time() - t_ep
        if partial:
            stopped = "max_time"
            if n_steps == 0 and history:
                log(f"time limit of {cfg.max_time:g} s reached; keeping the best model")
                epoch -= 1
                break

        # ---------------------------------------------------------- validation (rank 0)
        stop_flag = 0.0
        if rank == 0:
            cell_protos = (
                compute_cell_prototypes(model, data, proto_rows, cfg.batch_size) if is_prism else {}
            )
            if cell_protos:
                model.set_population_prototype(np.mean(list(cell_protos.values()), axis=0))
            val = _validate_torch(model, data, plans, cfg)
            primary = _primary_set(val)
            value = val[primary]["aupr_zero_shot"] if primary else float("nan")
            temp = float(model.temperature().detach().float().cpu())
            row: dict[str, Any] = {
                "epoch": epoch + 1,
                "partial": int(partial),
                "steps": n_steps,
                "seconds": round(time.time() - t_ep, 3),
                "train_pairs_per_s": round(n_pairs_seen * world / max(train_secs, 1e-9), 1),
            }
            for k, v in sums.items():
                row[f"train_{k}"] = v / max(n_steps, 1)
            for name, v in val.items():
                row[f"{name}_zero_shot"] = v["aupr_zero_shot"]
                row[f"{name}_adapted"] = v["aupr_adapted"]
                row[f"{name}_u_i"] = v["aupr_u_i"]
                row[f"{name}_hsic"] = v["hsic"]
                for cell, cv in v.get("cells", {}).items():
                    row[f"{name}.{cell}_zero_shot"] = cv.get("aupr_zero_shot")
                    row[f"{name}.{cell}_adapted"] = cv.get("aupr_adapted")
            row["temperature"] = temp
            history.append(row)
            improved = np.isfinite(value) and value > best_value + 1e-12
            if primary is None and not np.isfinite(best_value):
                # no validation set has both classes: AUPR is undefined, keep the latest
                if epoch == start_epoch:
                    log(
                        "WARNING: no validation cell has both classes; validation AUPR is "
                        "undefined, so the last epoch is kept and early stopping is off"
                    )
                best_state = None
            if improved or best_state is None:
                if improved:
                    best_value = value
                best_epoch = epoch + 1
                bad_epochs = 0
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
            parts_text = ", ".join(
                f"{k} {_fmt(row.get(f'train_{k}'))}"
                for k in ("bce", "rank", "aux_ui", "hsic", "l1")
                if f"train_{k}" in row
            )
            log(
                f"epoch {epoch + 1}/{cfg.epochs}{' (partial)' if partial else ''}: loss "
                f"{_fmt(row.get('train_total'))}"
                + (f" ({parts_text})" if parts_text else "")
                + "".join(
                    f" | {name} zero-shot {_fmt(v['aupr_zero_shot'])} adapted "
                    f"{_fmt(v['aupr_adapted'])}"
                    + (
                        " ["
                        + ", ".join(
                            f"{c} {_fmt(cv.get('aupr_zero_shot'))}/{_fmt(cv.get('aupr_adapted'))}"
                            for c, cv in v["cells"].items()
                        )
                        + "]"
                        if len(v.get("cells", {})) > 1
                        else ""
                    )
                    + (
                        f" HSIC {v['hsic']:.3g}"
                        if v.get("hsic") is not None and np.isfinite(v["hsic"])
                        else ""
                    )
                    for name, v in val.items()
                )
                + f" | T {temp:.3f} | {row['train_pairs_per_s']:.0f} pairs/s"
                + (" *" if improved else "")
            )
            if bad_epochs >= cfg.patience and not partial and primary is not None:
                stop_flag = 1.0
                stopped = "early_stop"
                log(f"early stop: no improvement for {cfg.patience} epoch(s)")
        if world > 1:
            import torch.distributed as dist

            t = torch.tensor([stop_flag], device=device)
            dist.broadcast(t, src=0)
            stop_flag = float(t.item())
            if stop_flag and stopped == "epochs":
                stopped = "early_stop"
        ckpt_state = dict(
            model=model,
            opt=opt,
            history=history,
            best_value=best_value,
            best_epoch=best_epoch,
            bad_epochs=bad_epochs,
            best_state=best_state,
        )
        ckpt.end_epoch(epoch=epoch, **ckpt_state)  # SIGKILL loses at most the next epoch
        ckpt.stop_if_requested(epoch=epoch, step=None, **ckpt_state)
        if partial:
            log(f"time limit of {cfg.max_time:g} s reached; keeping the best model")
            break
        if stop_flag:
            break

    epochs_run = epoch + 1
    train_state = ckpt.state(
        epoch=epoch,
        model=model,
        opt=opt,
        history=history,
        best_value=best_value,
        best_epoch=best_epoch,
        bad_epochs=bad_epochs,
        best_state=best_state,
    )
    if rank != 0:
        if world > 1:
            import torch.distributed as dist

            dist.barrier()
        return TrainResult(None, None, best_epoch, None, epochs_run, stopped, history, {}, split)

    # ---------------------------------------------------------------- best model, card
    model.load_state_dict(best_state)
    model.eval()
    if hasattr(model, "prune_scan"):
        model.prune_scan = True
    cell_protos = (
        compute_cell_prototypes(model, data, proto_rows, cfg.batch_size) if is_prism else {}
    )
    card = _model_card(
        model,
        data,
        split,
        cfg,
        mcfg,
        plans,
        history,
        best_epoch,
        best_value,
        stopped,
        epochs_run,
        log,
    )
    if warm is not None:
        card["warm_start"] = warm
    fp = save_model_dir(
        out,
        kind=kind,
        model_config=mcfg.to_dict(),
        train_config=cfg.to_dict(),
        windows=windows,
        model_card=card,
        history=history,
        state_dict=model.state_dict(),
        data_files=data_files,
        cell_prototypes={cell_name(data, c): p.tolist() for c, p in cell_protos.items()},
        train_state=train_state,
        split=split.to_dict(),
        force=True,  # the run has owned the directory since its start (checkpoints)
    )
    card["fingerprint"] = fp
    _log_validation_summary(card["validation"], log, prototypes=is_prism)
    log(
        f"wrote {out}: best epoch {best_epoch} of {epochs_run} (stopped by {stopped}), "
        f"fingerprint {fp}"
    )
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    return TrainResult(
        out,
        fp,
        best_epoch,
        best_value if np.isfinite(best_value) else None,
        epochs_run,
        stopped,
        history,
        card,
        split,
    )


def _episode_loss(out, y, w):
    from epcli.model.losses import episode_loss

    return episode_loss(out, y, None, w)


# ---------------------------------------------------------------------------- model card
def _model_card(
    model, data, split, cfg, mcfg, plans, history, best_epoch, best_value, stopped, epochs_run, log
) -> dict[str, Any]:
    """Components, measured contributions, validation and the collapse check."""
    from epcli.model.encoder import reverse_complement

    is_prism = cfg.model in PROTOTYPE_KINDS
    val = _validate_torch(model, data, plans, cfg, detail=True)
    dist = _distance_auprs(data, split, cfg, plans)
    primary = _primary_set(val)
    temp = float(model.temperature().detach().float().cpu())
    label = np.asarray(data.label)
    comps: dict[str, Any] = {}
    collapse = _collapse_check(np.zeros(0))
    if primary is not None:
        pv = val[primary]
        plan = plans[primary]
        y = label[plan.rows]
        sub = data.subset(plan.rows)
        # distance input zeroed (zero-shot path)
        nod = pair_features_unique(model, sub, batch_size=cfg.batch_size, zero_distance=True)
        nod_logit = score_features(model, nod, None)["logit"]
        a_nod = _nanmean(aupr(y[cp.idx], nod_logit[cp.idx]) for cp in plan.cells)
        comps["distance"] = {
            "enabled": bool(mcfg.use_distance),
            "aupr_full": pv["aupr_zero_shot"],
            "aupr_distance_zeroed": a_nod,
            "contribution": _diff(pv["aupr_zero_shot"], a_nod),
        }
        # R_E: adapted full vs R_E zeroed (= U_I alone) on the same rows; variance share
        share = float("nan")
        ui, re_ = [], []
        for d in pv["cells"].values():
            ad = d.get("_adapted")
            if ad is not None:
                ui.append(ad["u_i"])
                re_.append(ad["r_e"])
        if ui:
            u, r = np.concatenate(ui), np.concatenate(re_)
            denom = u.var() + r.var()
            share = float(r.var() / denom) if denom > 0 else float("nan")
        comps["r_e"] = {
            "enabled": bool(is_prism and mcfg.use_re),
            "aupr_adapted": pv["aupr_adapted"],
            "aupr_r_e_zeroed": pv["aupr_u_i"],
            "contribution": _diff(pv["aupr_adapted"], pv["aupr_u_i"]),
            "logit_variance_share": share,
            "note": "R_E zeroed ranks pairs as U_I alone; share = var(R_E) / (var(U_I) + "
            "var(R_E)) with adapted prototypes",
        }
        comps["prototypes"] = {
            "enabled": bool(is_prism and mcfg.use_re),
            "aupr_zero_shot": pv["aupr_zero_shot_rest"],
            "aupr_adapted": pv["aupr_adapted"],
            "contribution": _diff(pv["aupr_adapted"], pv["aupr_zero_shot_rest"]),
            "note": f"adapted = prototype from {cfg.support_size} labeled pairs of the cell; "
            "both AUPRs on the cell's pairs outside that support set",
        }
        comps["aux_ui_loss"] = {
            "enabled": cfg.loss_aux_ui > 0,
            "weight": cfg.loss_aux_ui,
            "aupr_u_i_alone": pv["aupr_u_i"],
        }
        comps["hsic"] = {
            "enabled": cfg.loss_hsic > 0,
            "weight": cfg.loss_hsic,
            "hsic_validation": pv["hsic"],
        }
        # RC consistency: score reverse-complemented anchors
        rc = dataclasses.replace(
            sub,
            enh_seqs=reverse_complement(sub.enh_seqs),
            pro_seqs=reverse_complement(sub.pro_seqs),
        )
        rcf = pair_features_unique(model, rc, batch_size=cfg.batch_size)
        rc_logit = score_features(model, rcf, None)["logit"]
        a_rc = _nanmean(aupr(y[cp.idx], rc_logit[cp.idx]) for cp in plan.cells)
        comps["rc_augmentation"] = {
            "enabled": bool(cfg.rc_aug),
            "aupr_forward": pv["aupr_zero_shot"],
            "aupr_reverse_complement": a_rc,
            "mean_abs_logit_change": float(np.mean(np.abs(rc_logit - pv["_zero_shot"]["logit"]))),
        }
        collapse = _collapse_check(sigmoid(pv["_zero_shot"]["logit"]), y)
        if hasattr(model, "scanner"):
            comps.update(_motif_components(model, sub, y, plan, pv, cfg, mcfg))
    if hasattr(model, "scanner"):
        comps.pop("rc_augmentation", None)  # scans are strand-symmetric by construction
    comps["rope"] = {
        "enabled": bool(is_prism and mcfg.use_rope and not hasattr(model, "scanner")),
        "contribution": None,
        "note": "fixed by the architecture; measuring it needs a model trained without it",
    }
    comps["ranking_loss"] = {
        "enabled": cfg.loss_rank > 0,
        "weight": cfg.loss_rank,
        "contribution": None,
        "note": "a training-time term; measuring it needs a run without it",
    }
    if collapse["collapsed"]:
        log("WARNING: MODEL COLLAPSED: " + "; ".join(collapse["reasons"]))
    clean_val: dict[str, Any] = {}
    for name, v in val.items():
        cells = {}
        for c, d in v["cells"].items():
            cells[c] = {k: x for k, x in d.items() if not k.startswith("_")}
            cells[c]["distance_aupr"] = dist[name]["cells"].get(c)
        clean_val[name] = {k: x for k, x in v.items() if not k.startswith("_") and k != "cells"}
        clean_val[name]["cells"] = cells
        clean_val[name]["distance_aupr"] = dist[name]["mean"]
    extra: dict[str, Any] = {}
    if hasattr(model, "scanner"):
        from epcli.model.motif import top_motifs

        extra["motif_set"] = _motif_set_card(mcfg)
        extra["top_motifs"] = top_motifs(model, 20)
    return {
        "model_kind": cfg.model,
        "epcli_version": epcli.__version__,
        **extra,
        "components": comps,
        "validation": clean_val,
        "temperature": temp,
        "early_stopping": {
            "set": primary,
            "metric": "mean zero-shot AUPR over cells",
            "best_epoch": best_epoch,
            "best_value": best_value if np.isfinite(best_value) else None,
            "stopped": stopped,
            "epochs_run": epochs_run,
            "patience": cfg.patience,
        },
        "train": _train_summary(data, split),
        "collapse": collapse,
        "collapsed": collapse["collapsed"],
        "split": split.to_dict(),
    }


def _motif_set_card(mcfg) -> dict[str, Any]:
    """The motif set of a motif model as the card records it."""
    return {
        "spec": mcfg.motifs,
        "n_motifs": len(mcfg.motif_ids or []),
        "checksum": mcfg.motif_checksum,
        "ids": list(mcfg.motif_ids or []),
        "names": list(mcfg.motif_names or []),
    }


def _motif_components(model, sub: PairData, y, plan, pv, cfg, mcfg) -> dict[str, Any]:
    """Measured contribution of each part of the motif model (zero-shot AUPR without it)."""
    from epcli.model.motif import ablated

    def zs_aupr() -> float:
        f = pair_features_unique(model, sub, batch_size=cfg.batch_size)
        logit = score_features(model, f, None)["logit"]
        return _nanmean(aupr(y[cp.idx], logit[cp.idx]) for cp in plan.cells)

    full = pv["aupr_zero_shot"]
    out: dict[str, Any] = {}
    parts = {
        "enhancer_motifs": True,
        "promoter_motifs": True,
        "interaction": mcfg.use_interaction,
        "free_filters": mcfg.n_free_filters > 0,
    }
    for part, enabled in parts.items():
        entry: dict[str, Any] = {"enabled": bool(enabled), "aupr_full": full}
        if enabled:
            with ablated(model, part):
                a = zs_aupr()
            entry.update({"aupr_without": a, "contribution": _diff(full, a)})
        out[part] = entry
    active = int(model.active_motifs().numel())
    out["sparsity"] = {
        "enabled": mcfg.sparsity > 0,
        "l1_weight": mcfg.sparsity,
        "active_motifs": active,
        "of_motifs": int(model.scanner.n_motifs),
        "note": "motifs with a non-zero weight, interaction factor or R_E gate; the others "
        "are not scanned at prediction",
    }
    out["motif_prior"] = {
        "enabled": bool(mcfg.use_motif_prior),
        "finetuned": bool(mcfg.motif_finetune),
        "contribution": None,
        "note": "PWM layer initialised from the motif set; measuring it needs a run without "
        "it (use_motif_prior=false), see docs/benchmarks.md",
    }
    return out


def _diff(a: float, b: float) -> float | None:
    d = a - b
    return float(d) if np.isfinite(d) else None


__all__ = [
    "ALL_KINDS",
    "Episode",
    "EpisodeSampler",
    "Split",
    "TrainConfig",
    "TrainResult",
    "aupr",
    "check_inputs",
    "check_training_rows",
    "compute_cell_prototypes",
    "make_split",
    "train",
]
