"""Training checkpoints: what ``epcli train`` saves so that no interruption loses its work.

A torch training run owns its model directory from the start:

- :meth:`Checkpointer.begin` marks the directory incomplete (``epcli_model.json`` status
  ``"incomplete"`` and an ``INCOMPLETE`` note) and writes ``config.json``.
- After every epoch, :meth:`Checkpointer.end_epoch` writes ``train_state.pt`` atomically -
  last weights, optimizer state, epoch, history, best-so-far weights and score, RNG states,
  the resolved configs - then the best weights so far as ``weights.pt`` and
  ``history.tsv``. A SIGKILL therefore loses at most the epoch in progress.
- SIGINT and SIGTERM (:func:`deferred`) only set a flag: the loop finishes the step it is
  in, :meth:`Checkpointer.stop_if_requested` saves a checkpoint of the exact position
  inside the epoch (numpy and torch RNG states, step, running loss sums), and the run ends
  with :class:`TrainingInterrupted`, whose message says how to resume.
- ``--resume`` (:meth:`Checkpointer.resume`) restores all of it, so the resumed run ends
  with the same weights as an uninterrupted one.
- The final model directory (model card and all) turns the marker ``"complete"``.

``train_state.pt`` is read with ``torch.load(weights_only=True)`` only: plain tensors,
numbers, strings, lists and dicts; the numpy RNG state is stored as JSON text.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import epcli
from epcli.core.errors import EpcliError, UsageError
from epcli.io.files import StopRequest, deferred_signals, write_bytes_atomic
from epcli.io.marker import (
    CONFIG,
    HISTORY,
    KNOWN_FILES,
    MARKER,
    TRAIN_STATE,
    WEIGHTS,
    mark_incomplete,
    read_marker,
)
from epcli.io.modeldir import config_json_bytes, load_train_state
from epcli.io.serialize import history_tsv, torch_bytes

#: ``train_state.pt`` format marker and version.
CHECKPOINT_FORMAT = "epcli-checkpoint"
CHECKPOINT_VERSION = 1

_STOP: StopRequest | None = None


@contextlib.contextmanager
def deferred() -> Iterator[StopRequest]:
    """Within the block SIGINT/SIGTERM ask the training loop to stop after its step."""
    global _STOP
    prev = _STOP
    with deferred_signals() as stop:
        _STOP = stop
        try:
            yield stop
        finally:
            _STOP = prev


class TrainingInterrupted(EpcliError):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint (exit 128 + signal)."""


def data_fingerprint(data: Any) -> str:
    """A short hash of the training pairs (labels, cells, distances, anchor indices)."""
    h = hashlib.sha256()
    for arr in (data.label, data.cell_idx, data.distance, data.enh_idx, data.pro_idx):
        a = np.ascontiguousarray(np.asarray(arr).astype(np.int64))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    h.update(str(tuple(data.enh_seqs.shape) + tuple(data.pro_seqs.shape)).encode())
    return h.hexdigest()[:16]


def saved_configs(model_dir: str | Path) -> dict[str, Any]:
    """``{"train": ..., "model": ...}`` of the run that wrote ``model_dir`` (for ``--resume``
    without ``--config``).

    Raises
    ------
    UsageError
        When the directory has no training checkpoint or no readable ``config.json``.
    """
    p = Path(model_dir)
    if not p.is_dir() or not (p / TRAIN_STATE).is_file():
        raise UsageError(
            "cannot resume: no training state (train_state.pt) in the model directory",
            path=p,
            hint="train without --resume first (an interrupted run saves one after its first step)",
        )
    try:
        d = json.loads((p / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        d = None
    if not isinstance(d, dict) or not isinstance(d.get("train"), dict):
        raise EpcliError(f"cannot resume: {CONFIG} is missing or unreadable", path=p / CONFIG)
    out = {"train": dict(d["train"])}
    if isinstance(d.get("model"), dict):
        out["model"] = dict(d["model"])
    return out


@dataclass
class Resumed:
    """Where a resumed run starts (see :meth:`Checkpointer.resume`)."""

    start_epoch: int
    history: list[dict[str, Any]]
    best_value: float
    best_epoch: int
    bad_epochs: int
    best_state: dict[str, Any] | None
    in_epoch: dict[str, Any] | None = None


@dataclass
class Checkpointer:
    """Saves and restores the training loop's state in the model directory ``out``.

    Only rank 0 writes; under DDP a stop request is agreed on by all ranks and the run
    stops at the last end-of-epoch checkpoint.
    """

    out: Path
    kind: str
    train_config: dict[str, Any]
    model_config: dict[str, Any]
    windows: dict[str, int]
    data: Any
    data_files: list[str] | None = None
    split: dict[str, Any] | None = None
    rank: int = 0
    world: int = 1
    device: Any = None
    log: Callable[[str], None] = lambda _: None
    _data_fp: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self._data_fp = data_fingerprint(self.data)

    # ------------------------------------------------------------------ start
    def begin(self, resuming: bool) -> None:
        """Create (or take over) the model directory and mark it incomplete."""
        if self.rank != 0:
            return
        self.out.mkdir(exist_ok=True)
        if not resuming:
            self._mark(0, None)
            for name in KNOWN_FILES:  # a --force run replaces the old model's files
                if name not in (MARKER, "INCOMPLETE"):
                    with contextlib.suppress(FileNotFoundError):
                        (self.out / name).unlink()
            for left in self.out.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    left.unlink()
        else:
            done = int(load_train_state(self.out).get("epoch", -1)) + 1
            self._mark(done, (read_marker(self.out) or {}).get("best_epoch"))
        config = config_json_bytes(
            self.kind,
            self.model_config,
            self.train_config,
            self.windows,
            self.data_files,
            self.split,
        )
        write_bytes_atomic(self.out / CONFIG, config)

    def _mark(self, epochs_done: int, best_epoch: int | None) -> None:
        total = int(self.train_config.get("epochs", 0))
        note = (
            "This model directory is incomplete: training stopped (or is still running) "
            f"after epoch {epochs_done} of {total}.\n"
            f"Resume it with: {self.resume_command()}\n"
            "epcli predict and adapt refuse it; --allow-incomplete uses the best weights "
            "saved so far (weights.pt), when there are any.\n"
        )
        mark_incomplete(
            self.out, note, epochs_done=epochs_done, epochs=total, best_epoch=best_epoch
        )

    def resume_command(self) -> str:
        """The command line that continues this run."""
        files = " ".join(shlex.quote(str(f)) for f in (self.data_files or ["DATA.h5"]))
        return f"epcli train {files} -o {shlex.quote(str(self.out))} --resume"

    def resume(self, model: Any, opt: Any) -> Resumed:
        """Load the checkpoint of ``out`` into ``model`` and ``opt``.

        Raises
        ------
        UsageError
            The model kind/config or the number of epochs does not allow resuming.
        EpcliError
            Different windows or different training data.
        """
        state = load_train_state(self.out)
        if state.get("format") == CHECKPOINT_FORMAT:
            if state.get("kind") != self.kind or state.get("model_config") != self.model_config:
                raise UsageError(
                    "cannot resume: the model kind or config differs from the one in the directory",
                    path=self.out,
                    hint="resume with the same model options (drop --config and --model to "
                    "use the saved ones), or train a new model",
                )
            if state.get("windows") != self.windows:
                raise EpcliError(
                    f"cannot resume: the model was trained on windows {state.get('windows')}, "
                    f"the data has {self.windows}",
                    path=self.out,
                )
            if state.get("data_fingerprint") not in (None, self._data_fp):
                raise EpcliError(
                    "cannot resume: the training data differs from the interrupted run's",
                    path=self.out,
                    hint="resume with the same data files: " + self.resume_command(),
                )
        else:  # a train_state.pt written before checkpoints carried their configs
            from epcli.io.modeldir import load_model_dir

            loaded = load_model_dir(self.out)
            if loaded.kind != self.kind or loaded.model_config != self.model_config:
                raise UsageError(
                    "cannot resume: the model kind or config differs from the one in the directory",
                    path=self.out,
                    hint="resume with the same model options, or train a new model",
                )
            state["best_state"] = loaded.state_dict
        try:
            model.load_state_dict(state["model_last"])
            opt.load_state_dict(state["optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise EpcliError(
                f"corrupt {TRAIN_STATE}: {str(exc).splitlines()[0][:200]}",
                path=self.out / TRAIN_STATE,
                hint="train again with --force",
            ) from None
        in_epoch = state.get("in_epoch")
        start = int(state["epoch"]) + 1 if in_epoch is None else int(in_epoch["epoch"])
        epochs = int(self.train_config["epochs"])
        if start >= epochs:
            raise UsageError(
                f"cannot resume: the model has already trained {start} epoch(s) and "
                f"epochs={epochs}",
                hint="raise the number of epochs to train more",
            )
        best = state.get("best_state")
        where = f"epoch {start + 1}" + (
            f", step {int(in_epoch['step']) + 1}" if in_epoch is not None else ""
        )
        self.log(f"resuming {self.out} at {where}")
        return Resumed(
            start_epoch=start,
            history=list(state.get("history", [])),
            best_value=float(state.get("best_value", -math.inf)),
            best_epoch=int(state.get("best_epoch", -1)),
            bad_epochs=int(state.get("bad_epochs", 0)),
            best_state=None if best is None else {k: v.clone() for k, v in best.items()},
            in_epoch=in_epoch,
        )

    # ------------------------------------------------------------------ in the loop
    def restore_step(
        self, resumed: Resumed | None, epoch: int, rng: np.random.Generator
    ) -> tuple[int, dict[str, float], int, int]:
        """At the start of ``epoch``: ``(first_step, sums, n_steps, n_pairs_seen)``, restored
        with the RNG states when the run was interrupted inside this epoch."""
        ie = None if resumed is None else resumed.in_epoch
        if ie is None or int(ie["epoch"]) != epoch:
            return 0, {}, 0, 0
        import torch

        rng.bit_generator.state = json.loads(ie["np_rng"])
        torch.set_rng_state(ie["torch_rng"])
        if ie.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(list(ie["cuda_rng"]))
        resumed.in_epoch = None
        return (
            int(ie["step"]),
            {str(k): float(v) for k, v in dict(ie["sums"]).items()},
            int(ie["n_steps"]),
            int(ie["n_pairs_seen"]),
        )

    def stop_requested(self) -> bool:
        """True when SIGINT/SIGTERM arrived (on any rank under DDP)."""
        flag = bool(_STOP)
        if self.world > 1:
            import torch
            import torch.distributed as dist

            t = torch.tensor([1.0 if flag else 0.0], device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = bool(t.item() > 0)
        return flag

    def state(
        self,
        *,
        epoch: int,
        model: Any,
        opt: Any,
        history: list[dict[str, Any]],
        best_value: float,
        best_epoch: int,
        bad_epochs: int,
        best_state: dict[str, Any] | None,
        in_epoch: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The checkpoint (``train_state.pt``) as a dict; ``epoch`` = last finished (0-based)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "epcli_version": epcli.__version__,
            "kind": self.kind,
            "train_config": self.train_config,
            "model_config": self.model_config,
            "windows": self.windows,
            "data_fingerprint": self._data_fp,
            "epoch": int(epoch),
            "model_last": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "optimizer": opt.state_dict(),
            "history": history,
            "best_value": float(best_value),
            "best_epoch": int(best_epoch),
            "bad_epochs": int(bad_epochs),
            "best_state": best_state,
            "in_epoch": in_epoch,
        }

    def end_epoch(self, *, epoch: int, best_state: dict[str, Any] | None, **kw: Any) -> None:
        """Checkpoint after a finished epoch; the best weights so far go to ``weights.pt``."""
        if self.rank != 0:
            return
        state = self.state(epoch=epoch, best_state=best_state, **kw)
        write_bytes_atomic(self.out / TRAIN_STATE, torch_bytes(state))
        if best_state is not None and kw.get("best_epoch", -1) >= 0:  # 0: the warm start
            weights = {k: v.detach().cpu().contiguous() for k, v in best_state.items()}
            write_bytes_atomic(self.out / WEIGHTS, torch_bytes(weights))
        write_bytes_atomic(self.out / HISTORY, history_tsv(kw.get("history", [])))
        self._mark(epoch + 1, kw.get("best_epoch"))

    def stop_if_requested(
        self,
        *,
        epoch: int,
        step: int | None,
        rng: np.random.Generator | None = None,
        sums: dict[str, float] | None = None,
        n_steps: int = 0,
        n_pairs_seen: int = 0,
        **kw: Any,
    ) -> None:
        """On SIGINT/SIGTERM: save the position (``step`` steps into ``epoch``; None = the
        epoch is finished and already checkpointed) and raise :class:`TrainingInterrupted`."""
        if not self.stop_requested():
            return
        import torch

        where = f"after epoch {epoch + 1}"
        if step is not None and self.world == 1:
            where = f"in epoch {epoch + 1} after step {step}"
            if self.rank == 0:
                in_epoch = {
                    "epoch": int(epoch),
                    "step": int(step),
                    "np_rng": json.dumps(rng.bit_generator.state),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all()
                    if torch.cuda.is_available()
                    else None,
                    "sums": dict(sums or {}),
                    "n_steps": int(n_steps),
                    "n_pairs_seen": int(n_pairs_seen),
                }
                state = self.state(epoch=epoch - 1, in_epoch=in_epoch, **kw)
                write_bytes_atomic(self.out / TRAIN_STATE, torch_bytes(state))
        elif step is not None:
            where = f"in epoch {epoch + 1}; the checkpoint of epoch {epoch} is kept"
        has_ckpt = (self.out / TRAIN_STATE).is_file()
        name = _STOP.name if _STOP else "a signal"
        signum = _STOP.signum if _STOP and _STOP.signum else 15
        raise TrainingInterrupted(
            f"training interrupted by {name} {where}"
            + ("; checkpoint saved" if has_ckpt else "; no epoch had finished"),
            path=self.out,
            hint=("resume with: " + self.resume_command())
            if has_ckpt
            else "train again with --force",
            exit_code=128 + int(signum),
        )


__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpointer",
    "Resumed",
    "TrainingInterrupted",
    "data_fingerprint",
    "deferred",
    "saved_configs",
]
