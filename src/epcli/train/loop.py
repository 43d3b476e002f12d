"""The torch training loop: device set-up, warm start, epochs of optimizer steps, validation
with early stopping, checkpoints, and the kept model's directory."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from epcli.core.arrays import PairData
from epcli.core.schema import AUTO_MOTIF_SITES, PROTOTYPE_KINDS
from epcli.inference.device import resolve_device
from epcli.io.modeldir import save_model_dir
from epcli.model.config import ModelConfig
from epcli.model.registry import build_model
from epcli.train.card import CardInputs, model_card
from epcli.train.checkpoint import Checkpointer
from epcli.train.checkpoint import deferred as deferred_signals
from epcli.train.config import Log, TrainConfig, no_log
from epcli.train.episodes import EpisodeSampler, epoch_seed, sample_step
from epcli.train.motif_setup import motif_builder, prepare_motif_model
from epcli.train.result import RunTarget, TrainResult
from epcli.train.split import Split, cell_name
from epcli.train.step import make_step_module, optimizer_step
from epcli.train.validate import (
    SetValidation,
    compute_cell_prototypes,
    log_validation_summary,
    plan_validation,
    primary_set,
    prototype_rows,
    selection_value,
    validate_torch,
)


def dist_info() -> tuple[int, int, int]:
    """(world size, rank, local rank) from torchrun's environment; (1, 0, 0) without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


@dataclass
class LoopContext:
    """What every part of the loop reads; fixed for the run."""

    data: PairData
    cfg: TrainConfig
    split: Split
    target: RunTarget
    log: Log
    device: torch.device
    use_amp: bool
    world: int
    rank: int
    progress: Callable[[int], None] | None
    on_epoch: Callable[[EpochReport], None] | None

    @property
    def episodic(self) -> bool:
        """Episodes with prototypes (``prism`` kinds), else plain batches."""
        return self.cfg.model in PROTOTYPE_KINDS

    @property
    def steps(self) -> int:
        """Optimizer steps per epoch on this rank."""
        return -(-self.cfg.steps_per_epoch // self.world)


@dataclass
class BestSoFar:
    """Early-stopping state: the history, and the best epoch's value and weights."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_value: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    best_state: dict[str, Any] | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """The fields as the checkpointer's keyword arguments."""
        return {
            "history": self.history,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "best_state": self.best_state,
        }


@dataclass
class LoopParts:
    """The run's moving parts: the model, its (DDP-wrapped) step module, the optimizer, the
    episode sampler, the checkpointer and the resumed state (None when starting fresh)."""

    model: Any
    ddp: Any
    opt: Any
    sampler: EpisodeSampler
    ckpt: Checkpointer
    resumed: Any


@dataclass
class EpochTrain:
    """The optimizer steps of one epoch."""

    sums: dict[str, float]
    n_steps: int
    n_pairs_seen: int
    partial: bool
    seconds: float


@dataclass
class EpochReport:
    """One epoch after validation (what the CLI prints as a line).

    Attributes
    ----------
    epoch, epochs : int
        1-based epoch and the maximum.
    partial : bool
        The time limit cut the epoch short.
    row : dict
        The history row (losses, AUPRs, pairs/s, temperature).
    validation : dict of str to SetValidation
    temperature : float
    improved : bool
        A new best validation value.
    """

    epoch: int
    epochs: int
    partial: bool
    row: dict[str, Any]
    validation: dict[str, SetValidation]
    temperature: float
    improved: bool


def train_torch(
    data: PairData,
    cfg: TrainConfig,
    mcfg: Any,
    split: Split,
    target: RunTarget,
    log: Log,
    progress: Callable[[int], None] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainResult:
    """Set up the device, threads and process group, run :func:`torch_loop`, restore them."""
    if not isinstance(mcfg, ModelConfig):
        mcfg = ModelConfig.from_dict(dict(mcfg or {}))
    if mcfg.kind != cfg.model:
        mcfg = dataclasses.replace(mcfg, kind=cfg.model)
    mcfg, builder = motif_builder(mcfg, target.resume_dir, log, build_model)
    world, rank, local_rank = dist_info()
    device = resolve_device(cfg.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if rank != 0:
        log, progress, on_epoch = no_log, None, None
    use_amp = bool(cfg.amp and device.type == "cuda" and torch.cuda.is_bf16_supported())
    ctx = LoopContext(
        data, cfg, split, target, log, device, use_amp, world, rank, progress, on_epoch
    )
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
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            dist_created = True
        _log_device(ctx)
        stack.enter_context(deferred_signals())  # SIGINT/SIGTERM: finish the step, save
        return torch_loop(ctx, mcfg, builder)
    finally:
        stack.close()
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        if dist_created:
            dist.destroy_process_group()


def _log_device(ctx: LoopContext) -> None:
    if ctx.device.type == "cuda":
        name = torch.cuda.get_device_name(ctx.device)
        ctx.log(f"device: {ctx.device} ({name}){', bf16 autocast' if ctx.use_amp else ''}")
    else:
        ctx.log(f"device: cpu ({torch.get_num_threads()} thread(s))")
    if ctx.world > 1:
        ctx.log(f"distributed: {ctx.world} processes")


def _any_rank(ctx: LoopContext, flag: bool) -> bool:
    """True on every rank when ``flag`` is true on one (a no-op without DDP)."""
    if ctx.world == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _build(ctx: LoopContext, mcfg: ModelConfig, builder) -> tuple[Any, ModelConfig, dict | None]:
    """The model on its device; a new motif model gets its warm start (the card's record)."""
    model = builder(mcfg, seed=ctx.cfg.seed).to(ctx.device)
    warm: dict[str, Any] | None = None
    if hasattr(model, "prune_scan"):
        model.prune_scan = False  # every motif until training ends (the active set changes)
    if hasattr(model, "fit_normalization") and ctx.target.resume_dir is None:
        model, warm = prepare_motif_model(
            model,
            ctx.data,
            ctx.split.train_rows,
            ctx.log,
            ctx.split.adapt_rows,
            builder=builder if mcfg.motif_sites == AUTO_MOTIF_SITES else None,
            seed=ctx.cfg.seed,
        )
        model.cfg.sparsity = warm["sparsity"]
        mcfg = model.cfg
    n_params = sum(p.numel() for p in model.parameters())
    w = ctx.target.windows
    ctx.log(
        f"model: {ctx.cfg.model}, {n_params:,} parameters, windows {w['enhancer']}/"
        f"{w['promoter']} bp"
    )
    return model, mcfg, warm


def _wrap_ddp(ctx: LoopContext, step_mod, mcfg: ModelConfig):
    """The step module, wrapped in DistributedDataParallel under torchrun."""
    if ctx.world == 1:
        return step_mod
    kind = ctx.cfg.model
    unused = not (kind in PROTOTYPE_KINDS and mcfg.use_re) or kind == "prism"
    return DistributedDataParallel(
        step_mod,
        device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
        find_unused_parameters=unused,
    )


def torch_loop(ctx: LoopContext, mcfg: ModelConfig, builder) -> TrainResult:
    """Epochs of optimizer steps, validation and checkpoints; then the kept model's directory.

    ``builder(mcfg, seed)`` makes the model (the motif model's loads its PWMs).
    """
    cfg, log = ctx.cfg, ctx.log
    model, mcfg, warm = _build(ctx, mcfg, builder)
    step_mod = make_step_module(model, cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt = Checkpointer(  # the model directory is ours from here on
        ctx.target.out,
        kind=cfg.model,
        train_config=cfg.to_dict(),
        model_config=mcfg.to_dict(),
        windows=ctx.target.windows,
        data=ctx.data,
        data_files=ctx.target.data_files,
        split=ctx.split.to_dict(),
        rank=ctx.rank,
        world=ctx.world,
        device=ctx.device,
        log=log,
    )
    resumed = ckpt.resume(model, opt) if ctx.target.resume_dir is not None else None
    if hasattr(model, "fix_support"):  # episodes refit the warm start's (or resumed) support
        model.fix_support()
    best, start_epoch = BestSoFar(), 0
    if resumed is not None:
        start_epoch = resumed.start_epoch
        best = BestSoFar(**{k: getattr(resumed, k) for k in BestSoFar().as_kwargs()})
    ckpt.begin(resuming=resumed is not None)
    ddp = _wrap_ddp(ctx, step_mod, mcfg)
    data, split = ctx.data, ctx.split
    sampler = EpisodeSampler(
        data.label, data.cell_idx, split.train_rows, cfg.support_size, cfg.query_size
    )
    plans = plan_validation(data, split, cfg)
    proto_rows = prototype_rows(data, split.train_rows, cfg)
    if warm is not None and resumed is None and ctx.rank == 0:
        _validate_warm_start(ctx, model, plans, proto_rows, best)
    t_start = time.time()

    def time_up() -> bool:
        return _any_rank(ctx, cfg.max_time is not None and time.time() - t_start >= cfg.max_time)

    stopped, epoch = "epochs", start_epoch - 1
    for epoch in range(start_epoch, cfg.epochs):
        t_ep = time.time()
        parts = LoopParts(model, ddp, opt, sampler, ckpt, resumed)
        ep = _train_epoch(ctx, parts, epoch, best, time_up)
        if ep.partial:
            stopped = "max_time"
            if ep.n_steps == 0 and best.history:
                log(f"time limit of {cfg.max_time:g} s reached; keeping the best model")
                epoch -= 1
                break
        stop = False
        if ctx.rank == 0:
            first = epoch == start_epoch
            stop = _validate_epoch(ctx, model, plans, proto_rows, best, ep, epoch, t_ep, first)
            if stop:
                stopped = "early_stop"
                log(f"early stop: no improvement for {cfg.patience} epoch(s)")
        if ctx.world > 1:
            t = torch.tensor([1.0 if stop else 0.0], device=ctx.device)
            dist.broadcast(t, src=0)
            stop = bool(t.item())
            if stop and stopped == "epochs":
                stopped = "early_stop"
        state = {"model": model, "opt": opt, **best.as_kwargs()}
        ckpt.end_epoch(epoch=epoch, **state)  # SIGKILL loses at most the next epoch
        ckpt.stop_if_requested(epoch=epoch, step=None, **state)
        if ep.partial:
            log(f"time limit of {cfg.max_time:g} s reached; keeping the best model")
            break
        if stop:
            break
    train_state = ckpt.state(epoch=epoch, model=model, opt=opt, **best.as_kwargs())
    if ctx.rank != 0:
        if ctx.world > 1:
            dist.barrier()
        return TrainResult(
            None, None, best.best_epoch, None, epoch + 1, stopped, best.history, {}, split
        )
    return _finish(ctx, model, mcfg, plans, best, warm, train_state, epoch, stopped)


def _train_epoch(
    ctx: LoopContext, parts: LoopParts, epoch: int, best: BestSoFar, time_up
) -> EpochTrain:
    """The optimizer steps of one epoch (from a resumed position, until the time is up)."""
    model, ddp, opt, sampler, ckpt = parts.model, parts.ddp, parts.opt, parts.sampler, parts.ckpt
    resumed = parts.resumed
    cfg = ctx.cfg
    t_ep = time.time()
    rng = np.random.default_rng(epoch_seed(cfg.seed, epoch, ctx.rank))
    torch.manual_seed(epoch_seed(cfg.seed, epoch, ctx.rank))
    model.train()
    first_step, sums, n_steps, n_pairs_seen = ckpt.restore_step(resumed, epoch, rng)
    partial = False
    for step_i in range(first_step, ctx.steps):
        ckpt.stop_if_requested(  # SIGINT/SIGTERM: save this position and stop
            epoch=epoch,
            step=step_i,
            rng=rng,
            sums=sums,
            n_steps=n_steps,
            n_pairs_seen=n_pairs_seen,
            model=model,
            opt=opt,
            **best.as_kwargs(),
        )
        if time_up():
            partial = True
            break
        batch = sample_step(sampler, ctx.split.train_rows, rng, cfg, ctx.episodic)
        loss_parts = optimizer_step(
            model, ddp, opt, ctx.data, batch, rng, cfg, ctx.device, ctx.use_amp, ctx.episodic
        )
        for k, v in loss_parts.items():
            sums[k] = sums.get(k, 0.0) + v
        n_steps += 1
        n_pairs_seen += batch.rows.size
        if ctx.progress is not None:
            ctx.progress(epoch * ctx.steps + n_steps)
    return EpochTrain(sums, n_steps, n_pairs_seen, partial, time.time() - t_ep)


def _history_row(ctx: LoopContext, ep: EpochTrain, val, epoch: int, t_ep: float, temp: float):
    """The epoch's row of ``history``: losses, per-set and per-cell AUPRs, speed."""
    row: dict[str, Any] = {
        "epoch": epoch + 1,
        "partial": int(ep.partial),
        "steps": ep.n_steps,
        "seconds": round(time.time() - t_ep, 3),
        "train_pairs_per_s": round(ep.n_pairs_seen * ctx.world / max(ep.seconds, 1e-9), 1),
    }
    for k, v in ep.sums.items():
        row[f"train_{k}"] = v / max(ep.n_steps, 1)
    for name, v in val.items():
        row[f"{name}_zero_shot"] = v.aupr_zero_shot
        row[f"{name}_adapted"] = v.aupr_adapted
        row[f"{name}_u_i"] = v.aupr_u_i
        row[f"{name}_hsic"] = v.hsic
        for cell, cv in v.cells.items():
            row[f"{name}.{cell}_zero_shot"] = cv.aupr_zero_shot
            row[f"{name}.{cell}_adapted"] = cv.aupr_adapted
    row["temperature"] = temp
    return row


def _validate_warm_start(ctx, model, plans, proto_rows, best: BestSoFar) -> None:
    """The warm-started model is a candidate of its own (epoch 0, no steps): the episodes
    must beat it on the validation cells to be kept."""
    zero = EpochTrain({}, 0, 0, False, 0.0)
    _validate_epoch(ctx, model, plans, proto_rows, best, zero, -1, time.time(), True)


def _validate_epoch(ctx, model, plans, proto_rows, best: BestSoFar, ep, epoch, t_ep, first) -> bool:
    """Validate (rank 0), record the epoch, keep the best weights; True: stop early."""
    cfg = ctx.cfg
    cell_protos = (
        compute_cell_prototypes(model, ctx.data, proto_rows, cfg.batch_size) if ctx.episodic else {}
    )
    if cell_protos:
        model.set_population_prototype(np.mean(list(cell_protos.values()), axis=0))
    val = validate_torch(model, ctx.data, plans, cfg)
    primary = primary_set(val)
    value = selection_value(val) if primary else float("nan")
    temp = float(model.temperature().detach().float().cpu())
    row = _history_row(ctx, ep, val, epoch, t_ep, temp)
    best.history.append(row)
    improved = bool(np.isfinite(value) and value > best.best_value + 1e-12)
    if primary is None and not np.isfinite(best.best_value):
        # no validation set has both classes: AUPR is undefined, keep the latest
        if first:
            ctx.log(
                "WARNING: no validation cell has both classes; validation AUPR is "
                "undefined, so the last epoch is kept and early stopping is off"
            )
        best.best_state = None
    if improved or best.best_state is None:
        if improved:
            best.best_value = value
        best.best_epoch = epoch + 1
        best.bad_epochs = 0
        best.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    else:
        best.bad_epochs += 1
    if ctx.on_epoch is not None:
        ctx.on_epoch(EpochReport(epoch + 1, cfg.epochs, ep.partial, row, val, temp, improved))
    return bool(best.bad_epochs >= cfg.patience and not ep.partial and primary is not None)


def _final_population(ctx, model, card: dict) -> dict[int, np.ndarray]:
    """Prototypes of every training cell, the validation cells included (their pairs in the
    training region), and the population prototype set to their mean.

    Validation measured each epoch's zero-shot AUPR with the fitted cells' population (the
    card's figures, already computed); the saved model's population then averages every
    training cell the user gave: one more cell's TFs in a new cell's zero-shot guess (on a
    rule never developed on, zero-shot AUPR of the unseen cells +0.03, docs/model.md).
    """
    if not ctx.episodic:
        return {}
    cfg, split = ctx.cfg, ctx.split
    rows = prototype_rows(ctx.data, np.concatenate([split.train_rows, split.adapt_rows]), cfg)
    protos = compute_cell_prototypes(model, ctx.data, rows, cfg.batch_size)
    if protos:
        model.set_population_prototype(np.mean(list(protos.values()), axis=0))
        card["components"]["prototypes"]["population_cells"] = [
            cell_name(ctx.data, c) for c in protos
        ]
    return protos


def _finish(ctx, model, mcfg, plans, best, warm, train_state, epoch, stopped):
    """Load the kept weights, write the model card and the model directory (rank 0)."""
    cfg, data, split, log = ctx.cfg, ctx.data, ctx.split, ctx.log
    epochs_run = epoch + 1
    model.load_state_dict(best.best_state)
    model.eval()
    if hasattr(model, "prune_scan"):
        model.prune_scan = True
    ci = CardInputs(
        model, data, split, cfg, mcfg, plans, best.best_epoch, best.best_value, stopped,
        epochs_run,
    )  # fmt: skip
    card = model_card(ci, log)
    if warm is not None:
        card["warm_start"] = warm
    cell_protos = _final_population(ctx, model, card)
    fp = save_model_dir(
        ctx.target.out,
        kind=cfg.model,
        model_config=mcfg.to_dict(),
        train_config=cfg.to_dict(),
        windows=ctx.target.windows,
        model_card=card,
        history=best.history,
        state_dict=model.state_dict(),
        data_files=ctx.target.data_files,
        cell_prototypes={cell_name(data, c): p.tolist() for c, p in cell_protos.items()},
        train_state=train_state,
        split=split.to_dict(),
        force=True,  # the run has owned the directory since its start (checkpoints)
    )
    card["fingerprint"] = fp
    log_validation_summary(card["validation"], log, prototypes=ctx.episodic)
    log(
        f"wrote {ctx.target.out}: best epoch {best.best_epoch} of {epochs_run} (stopped by "
        f"{stopped}), fingerprint {fp}"
    )
    if ctx.world > 1:
        dist.barrier()
    value = best.best_value if np.isfinite(best.best_value) else None
    return TrainResult(
        ctx.target.out, fp, best.best_epoch, value, epochs_run, stopped, best.history, card, split
    )
