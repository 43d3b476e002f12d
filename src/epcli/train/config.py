"""Training options (:class:`TrainConfig`) and the names of the validation sets."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from epcli.core.checks import check_type
from epcli.core.errors import EpcliError, UsageError
from epcli.core.schema import ALL_KINDS
from epcli.inference.device import DEVICE_HELP, check_device_name

#: Names of the validation sets.
VAL_CELLS = "heldout_cells"


VAL_REGION = "heldout_region"


#: Name used for pairs without a cell line.
UNKNOWN_CELL = "unknown"


Log = Callable[[str], None]


def no_log(_: str) -> None:
    """A log that drops every line (ranks other than 0, library calls without a log)."""
    return None


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
        try:
            check_device_name(self.device)
        except UsageError:
            raise bad("device", DEVICE_HELP) from None
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
