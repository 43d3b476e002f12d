"""What :func:`~epcli.train.run.train` returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from epcli.train.split import Split


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


@dataclass
class RunTarget:
    """Where a run writes: the model directory and what its config records.

    Attributes
    ----------
    out : Path
        The model directory.
    windows : dict of str to int
        ``enhancer`` / ``promoter`` window sizes of the data (bp).
    data_files : list of str or None
        Names of the training files.
    force : bool
        Replace an existing model directory.
    resume_dir : Path or None
        Continue the run checkpointed there.
    """

    out: Path
    windows: dict[str, int]
    data_files: list[str] | None = None
    force: bool = False
    resume_dir: Path | None = None
