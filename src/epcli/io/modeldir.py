"""The model directory that ``epcli train`` writes and every other command reads.

Layout (see ``docs/architecture.md``)::

    config.json           {"format": "epcli-model", "version", "model_kind", "train" (training
                          config), "model" (model config, torch kinds only), "windows"
                          {enhancer, promoter}, "data_files", "split", "epcli_version"}; it can
                          be given back to ``epcli train --config`` to repeat a run
    weights.pt            torch state_dict (torch models), read with ``weights_only=True``
    params.json           scikit-learn baseline parameters (``kmer`` / ``distance``)
    history.tsv           one row per epoch
    model_card.json       components, measured contributions, validation, collapse check,
                          ``fingerprint``
    cell_prototypes.json  prism: every training cell's prototype (validation cells too), their mean
                          the population prototype; for extrapolation checks
    train_state.pt        the training checkpoint (:mod:`epcli.train.checkpoint`), for ``--resume``
    epcli_model.json      the marker: {"format": "epcli-model-dir", "status": "complete" |
                          "incomplete", ...}; written when the directory is created
    INCOMPLETE            a note for people, present while the status is "incomplete"

A new directory is written under a temporary name beside the target and renamed into place;
an existing one (being trained into, or replaced with ``--force``) is marked incomplete,
its files are replaced one by one (each atomically), and the marker turns "complete" last,
so a reader never takes a half-written model for a finished one. Nothing here is
unpickled: torch files are read with ``torch.load(..., weights_only=True)``, everything else
is JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import epcli
from epcli.core.errors import EpcliError
from epcli.core.schema import ALL_KINDS, TORCH_KINDS, saved_model_config
from epcli.io.files import check_output_path
from epcli.io.marker import (
    CARD,
    CELL_PROTOTYPES,
    CONFIG,
    CONFIG_FORMAT,
    HISTORY,
    INCOMPLETE,
    KNOWN_FILES,
    MARKER,
    PARAMS,
    TRAIN_STATE,
    WEIGHTS,
    check_replaceable,
    is_model_dir,
    mark_incomplete,
    marker_bytes,
    read_marker,
)
from epcli.io.serialize import fingerprint_bytes, history_tsv, json_bytes, torch_bytes

CONFIG_VERSION = 1

#: Environment variable naming the default model directory.
ENV_MODEL = "EPCLI_MODEL"


@dataclass
class LoadedModel:
    """Everything read from a model directory (nothing built yet).

    Attributes
    ----------
    path : Path
        The directory.
    kind : str
        One of :data:`ALL_KINDS`.
    config : dict
        The whole ``config.json``.
    model_config : dict or None
        ``ModelConfig.to_dict()`` for torch models, else ``None``.
    train_config : dict
        ``TrainConfig.to_dict()``.
    windows : dict
        ``{"enhancer": Le, "promoter": Lp}`` in bp.
    state_dict : dict of str to torch.Tensor or None
        Weights of a torch model (on CPU).
    params : dict or None
        Baseline parameters (``kmer`` / ``distance``).
    model_card : dict
        The model card.
    fingerprint : str
        First 16 hex digits of the sha256 over ``config.json`` and the weights/params bytes.
    cell_prototypes : dict
        ``{cell: [[neg...], [pos...]]}`` of the training cells (empty when absent).
    """

    path: Path
    kind: str
    config: dict[str, Any]
    model_config: dict[str, Any] | None
    train_config: dict[str, Any]
    windows: dict[str, int]
    state_dict: dict[str, Any] | None
    params: dict[str, Any] | None
    model_card: dict[str, Any]
    fingerprint: str
    cell_prototypes: dict[str, list[list[float]]] = field(default_factory=dict)


# ------------------------------------------------------------------------- helpers


# -------------------------------------------------------------------------- saving
def save_model_dir(
    out_dir: str | os.PathLike,
    *,
    kind: str,
    model_config: dict[str, Any] | None,
    train_config: dict[str, Any],
    windows: dict[str, int],
    model_card: dict[str, Any],
    history: list[dict[str, Any]],
    state_dict: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    data_files: list[str] | None = None,
    cell_prototypes: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
    split: dict[str, Any] | None = None,
    force: bool = False,
) -> str:
    """Write a model directory atomically (temporary folder beside it, then rename).

    Parameters
    ----------
    out_dir : path
        Target directory; its parent must exist.
    kind : str
        One of :data:`ALL_KINDS`.
    model_config : dict or None
        ``ModelConfig.to_dict()`` (torch models).
    train_config : dict
        ``TrainConfig.to_dict()``.
    windows : dict
        ``{"enhancer": Le, "promoter": Lp}``.
    model_card : dict
        Written to ``model_card.json`` with ``fingerprint`` added.
    history : list of dict
        One dict per epoch, written as ``history.tsv``.
    state_dict : dict, optional
        Torch weights (required for torch kinds).
    params : dict, optional
        Baseline parameters (required for ``kmer`` / ``distance``).
    data_files : list of str, optional
        Names of the training data files (recorded, not read).
    cell_prototypes : dict, optional
        ``{cell: (2, env_dim) list}`` of the training cells.
    train_state : dict, optional
        Last weights / optimizer state / epoch for resuming (``train_state.pt``).
    split : dict, optional
        Description of the train/validation split (recorded in ``config.json``).
    force : bool
        Replace an existing ``out_dir``; otherwise an existing one is a :class:`UsageError`.

    Returns
    -------
    str
        The model fingerprint.
    """
    out = Path(out_dir)
    if kind not in ALL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    check_output_path(  # the one output check (its replaceable check comes before writing)
        out, force, what="model directory", no_stdout="must be a directory on disk", directory=True
    )
    parent = out.parent if str(out.parent) else Path(".")

    config_bytes = config_json_bytes(kind, model_config, train_config, windows, data_files, split)
    if kind in TORCH_KINDS:
        if state_dict is None:
            raise ValueError("a torch model needs a state_dict")
        payload = torch_bytes({k: v.detach().cpu().contiguous() for k, v in state_dict.items()})
        payload_name = WEIGHTS
    else:
        if params is None:
            raise ValueError("a baseline model needs params")
        payload = json_bytes(params)
        payload_name = PARAMS
    fp = fingerprint_bytes(config_bytes, payload)
    card = dict(model_card)
    card["fingerprint"] = fp
    card.setdefault("model_kind", kind)

    files = {
        CONFIG: config_bytes,
        payload_name: payload,
        HISTORY: history_tsv(history),
        CARD: json_bytes(card),
    }
    if cell_prototypes:
        files[CELL_PROTOTYPES] = json_bytes({"model_fingerprint": fp, "cells": cell_prototypes})
    if train_state is not None:
        files[TRAIN_STATE] = torch_bytes(train_state)
    if out.exists():
        check_replaceable(out)
        _write_in_place(out, files)
        return fp
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    try:
        tmp.chmod(_dir_mode())  # mkdtemp makes 0700; a model dir is as readable as any folder
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        (tmp / MARKER).write_bytes(marker_bytes("complete"))
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return fp


def config_json_bytes(
    kind: str,
    model_config: dict[str, Any] | None,
    train_config: dict[str, Any],
    windows: dict[str, int],
    data_files: list[str] | None = None,
    split: dict[str, Any] | None = None,
) -> bytes:
    """The bytes of ``config.json`` (see the module docstring)."""
    config = {
        "format": CONFIG_FORMAT,
        "version": CONFIG_VERSION,
        "model_kind": kind,
        "train": train_config,
        "windows": {"enhancer": int(windows["enhancer"]), "promoter": int(windows["promoter"])},
        "data_files": [os.path.basename(str(f)) for f in (data_files or [])],
        "split": split,
        "epcli_version": epcli.__version__,
    }
    if model_config is not None:
        config["model"] = model_config
    return json_bytes(config)


def _write_in_place(out: Path, files: dict[str, bytes]) -> None:
    """Finish (or replace) an existing model directory: marked incomplete, each file replaced
    atomically, stale model files removed, then marked complete."""
    from epcli.io.files import write_bytes_atomic

    if (read_marker(out) or {}).get("status") != "incomplete":
        mark_incomplete(out)
    for name, data in files.items():
        write_bytes_atomic(out / name, data)
    for name in KNOWN_FILES:
        if name not in files and name not in (MARKER, INCOMPLETE):
            with contextlib.suppress(FileNotFoundError):
                (out / name).unlink()
    write_bytes_atomic(out / MARKER, marker_bytes("complete"))
    with contextlib.suppress(FileNotFoundError):
        (out / INCOMPLETE).unlink()


def _dir_mode() -> int:
    """Permissions of a new folder under the current umask (e.g. 0755 with umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


# ------------------------------------------------------------------------- loading
def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EpcliError(
            f"incomplete model directory: {what} is missing",
            path=path,
            hint="train the model again (epcli train) or point --model at a complete directory",
        ) from None
    except OSError as exc:
        raise EpcliError(f"cannot read {what}: {exc.strerror}", path=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EpcliError(
            f"corrupt model directory: {what} is not valid JSON ({exc.msg})",
            path=path,
            line=exc.lineno,
        ) from None


def _load_torch(path: Path, what: str) -> Any:
    import torch

    if not path.is_file():
        raise EpcliError(
            f"incomplete model directory: {what} is missing",
            path=path,
            hint="train the model again (epcli train)",
        )
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about legacy and pickled files
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any failure here means a bad file
        raise EpcliError(
            f"corrupt model directory: {what} is not a safe epcli weights file (it cannot be "
            "read as plain tensors: it is truncated, damaged, or holds other Python objects)",
            path=path,
            hint="epcli never loads code from weights files; retrain the model or restore the "
            "file from the model directory epcli wrote",
        ) from None


def _read_config(p: Path) -> tuple[dict[str, Any], str, dict[str, int]]:
    """A model directory's ``config.json``: checked format, version, kind and windows."""
    config = _read_json(p / CONFIG, CONFIG)
    if not isinstance(config, dict) or config.get("format") != CONFIG_FORMAT:
        raise EpcliError(
            f"not an epcli model directory ({CONFIG} has no format {CONFIG_FORMAT!r})",
            path=p / CONFIG,
        )
    if int(config.get("version", 0)) > CONFIG_VERSION:
        raise EpcliError(
            f"model format version {config.get('version')} is newer than this epcli supports "
            f"({CONFIG_VERSION})",
            path=p / CONFIG,
            hint="upgrade epcli",
        )
    kind = config.get("model_kind")
    if kind not in ALL_KINDS:
        raise EpcliError(
            f"unknown model kind {kind!r} in {CONFIG}",
            path=p / CONFIG,
            hint="known kinds: " + ", ".join(ALL_KINDS),
        )
    windows = config.get("windows") or {}
    try:
        windows = {"enhancer": int(windows["enhancer"]), "promoter": int(windows["promoter"])}
    except (KeyError, TypeError, ValueError):
        raise EpcliError(
            f"corrupt model directory: {CONFIG} lacks windows {{enhancer, promoter}}",
            path=p / CONFIG,
        ) from None
    return config, kind, windows


def load_model_dir(
    path: str | os.PathLike, verify: bool = True, allow_incomplete: bool = False
) -> LoadedModel:
    """Read a model directory.

    Parameters
    ----------
    path : path
        The directory ``epcli train`` wrote.
    verify : bool
        Recompute the fingerprint and compare it with the model card's.
    allow_incomplete : bool
        Accept a directory whose training did not finish, using the best weights saved so
        far (the model card is then empty); otherwise such a directory is an error.

    Returns
    -------
    LoadedModel

    Raises
    ------
    EpcliError
        Missing directory, missing or unreadable files, unknown format or kind, or a
        fingerprint that does not match the files (corrupt or edited).
    """
    p = Path(path)
    if not p.exists():
        raise EpcliError(
            "model directory not found", path=p, hint="give --model a directory from epcli train"
        )
    if not p.is_dir():
        raise EpcliError("--model must be a directory written by epcli train, got a file", path=p)
    marker = read_marker(p)
    incomplete = marker is not None and marker.get("status") != "complete"
    if incomplete:
        _check_incomplete(p, marker, allow_incomplete)
    config, kind, windows = _read_config(p)
    state_dict = params = None
    if kind in TORCH_KINDS:
        payload_path = p / WEIGHTS
        state_dict = _load_torch(payload_path, WEIGHTS)
        if not isinstance(state_dict, dict):
            raise EpcliError(f"corrupt model directory: {WEIGHTS} is not a state_dict", path=p)
        if not isinstance(config.get("model"), dict):
            raise EpcliError(
                f"corrupt model directory: {CONFIG} lacks the model config ('model')",
                path=p / CONFIG,
            )
    else:
        payload_path = p / PARAMS
        params = _read_json(payload_path, PARAMS)
    card = {} if incomplete and not (p / CARD).is_file() else _read_json(p / CARD, CARD)
    if not isinstance(card, dict):
        raise EpcliError(f"corrupt model directory: {CARD} is not an object", path=p / CARD)
    fp = fingerprint_bytes((p / CONFIG).read_bytes(), payload_path.read_bytes())
    if verify and card.get("fingerprint") not in (None, fp):
        raise EpcliError(
            f"model directory does not match its fingerprint (card says {card.get('fingerprint')}, "
            f"files give {fp}): {CONFIG} or {payload_path.name} was changed after training",
            path=p,
            hint="retrain, or restore the original files",
        )
    cell_protos: dict[str, Any] = {}
    if (p / CELL_PROTOTYPES).is_file():
        cp = _read_json(p / CELL_PROTOTYPES, CELL_PROTOTYPES)
        if isinstance(cp, dict) and isinstance(cp.get("cells"), dict):
            cell_protos = cp["cells"]
    return LoadedModel(
        path=p,
        kind=kind,
        config=config,
        model_config=saved_model_config(config["model"]) if kind in TORCH_KINDS else None,
        train_config=config.get("train") or {},
        windows=windows,
        state_dict=state_dict,
        params=params,
        model_card=card,
        fingerprint=fp,
        cell_prototypes=cell_protos,
    )


def _check_incomplete(p: Path, marker: dict[str, Any], allow: bool) -> None:
    """Refuse a directory whose training did not finish, unless ``allow`` and a best model
    was saved."""
    done, total = marker.get("epochs_done"), marker.get("epochs")
    when = f" after epoch {done} of {total}" if isinstance(done, int) and done > 0 else " early"
    has_best = (p / WEIGHTS).is_file() or (p / PARAMS).is_file()
    resume = "resume it with 'epcli train DATA -o " + str(p) + " --resume'"
    if not allow:
        raise EpcliError(
            f"incomplete model directory: training stopped{when} and did not finish",
            path=p,
            hint=resume
            + (
                f", or pass --allow-incomplete to use the best model so far (epoch "
                f"{marker.get('best_epoch')})"
                if has_best
                else ""
            ),
        )
    if not has_best:
        raise EpcliError(
            f"incomplete model directory: training stopped{when} before any model was saved",
            path=p,
            hint=resume,
        )


def load_train_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``train_state.pt`` of a model directory (for resuming).

    Raises
    ------
    EpcliError
        When the directory has no training state (e.g. a baseline or a bundled model).
    """
    p = Path(path) / TRAIN_STATE
    if not p.is_file():
        raise EpcliError(
            f"cannot resume: {TRAIN_STATE} is missing",
            path=Path(path),
            hint="resume needs a directory written by epcli train for a torch model",
        )
    state = _load_torch(p, TRAIN_STATE)
    if not isinstance(state, dict):
        raise EpcliError(f"corrupt {TRAIN_STATE}", path=p)
    return state


# ---------------------------------------------------------------------- resolution
def bundled_default_dir() -> Path:
    """The model directory shipped inside the package (a distance prior)."""
    return Path(epcli.__file__).parent / "data" / "default_model"


def resolve_model(model_opt: str | os.PathLike | None) -> tuple[Path, str]:
    """Pick the model directory: ``--model``, else ``$EPCLI_MODEL``, else the bundled default.

    Parameters
    ----------
    model_opt : str or path or None
        Value of ``--model``.

    Returns
    -------
    (Path, str)
        The directory and a description of where it came from, for the log.

    Raises
    ------
    EpcliError
        When the chosen directory does not exist.
    """
    if model_opt is not None and str(model_opt) != "":
        p, src = Path(model_opt), f"--model {model_opt}"
    elif os.environ.get(ENV_MODEL):
        p, src = Path(os.environ[ENV_MODEL]), f"${ENV_MODEL}={os.environ[ENV_MODEL]}"
    else:
        p = bundled_default_dir()
        src = "the bundled default model (a distance-only prior; train your own for real use)"
        if not (p / CONFIG).is_file():
            raise EpcliError(
                "no model given and the bundled default model is not installed",
                hint=f"pass --model DIR or set ${ENV_MODEL}",
            )
        return p, src
    if not p.exists():
        raise EpcliError(
            f"model directory not found (from {src})",
            path=p,
            hint="give a directory written by epcli train",
        )
    return p, src


__all__ = [
    "LoadedModel",
    "bundled_default_dir",
    "fingerprint_bytes",
    "load_model_dir",
    "load_train_state",
    "check_replaceable",
    "is_model_dir",
    "mark_incomplete",
    "read_marker",
    "resolve_model",
    "save_model_dir",
]
