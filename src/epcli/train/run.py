"""``train``: check, split, then fit a torch model or a baseline."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from epcli.core.arrays import PairData
from epcli.core.errors import UsageError
from epcli.core.schema import SKLEARN_KINDS
from epcli.io.modeldir import check_replaceable
from epcli.train.config import Log, TrainConfig, no_log
from epcli.train.loop import EpochReport, dist_info, train_torch
from epcli.train.result import RunTarget, TrainResult
from epcli.train.sklearn import train_sklearn
from epcli.train.split import check_inputs, check_training_rows, make_split


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
    on_epoch: Callable[[EpochReport], None] | None = None,
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
    on_epoch : callable, optional
        Receives an :class:`~epcli.train.loop.EpochReport` after each epoch's validation
        (torch models, rank 0); the CLI prints it as one line (``format_epoch``).

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
    log = log or no_log
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
    target = RunTarget(out, windows, data_files, force, resume_dir)
    if tcfg.model in SKLEARN_KINDS:
        if dist_info()[1] != 0:  # under torchrun only rank 0 fits a baseline
            return TrainResult(None, None, 1, None, 1, "epochs", [], {}, split)
        return train_sklearn(data, tcfg, split, target, log, mcfg)
    return train_torch(data, tcfg, mcfg, split, target, log, progress, on_epoch)
