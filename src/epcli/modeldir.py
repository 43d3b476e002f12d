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
    cell_prototypes.json  per-training-cell prototypes (prism only), for extrapolation checks
    train_state.pt        last weights, optimizer state and epoch, for ``--resume``

The directory is written under a temporary name beside the target and renamed into place,
so a reader never sees a half-written model. Nothing here is unpickled: torch files are read
with ``torch.load(..., weights_only=True)``, everything else is JSON.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import epcli
from epcli.errors import EpcliError, UsageError

CONFIG = "config.json"
WEIGHTS = "weights.pt"
PARAMS = "params.json"
HISTORY = "history.tsv"
CARD = "model_card.json"
CELL_PROTOTYPES = "cell_prototypes.json"
TRAIN_STATE = "train_state.pt"

#: Model kinds backed by torch weights.
TORCH_KINDS = ("prism", "prism-scratch", "crossattn")
#: Model kinds backed by scikit-learn parameters in JSON.
SKLEARN_KINDS = ("motif-lr", "kmer", "distance")
#: Every model kind a model directory may hold.
MODEL_KINDS = TORCH_KINDS + SKLEARN_KINDS

#: ``config.json`` format marker and version.
CONFIG_FORMAT = "epcli-model"
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
        One of :data:`MODEL_KINDS`.
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
def fingerprint_bytes(config_bytes: bytes, payload_bytes: bytes) -> str:
    """Model fingerprint: sha256 over the ``config.json`` bytes then the payload bytes.

    Parameters
    ----------
    config_bytes : bytes
        Content of ``config.json``.
    payload_bytes : bytes
        Content of ``weights.pt`` or ``params.json``.

    Returns
    -------
    str
        The first 16 hex digits.
    """
    h = hashlib.sha256()
    h.update(config_bytes)
    h.update(payload_bytes)
    return h.hexdigest()[:16]


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n").encode(
        "utf-8"
    )


def _jsonable(obj: Any) -> Any:
    """Turn numpy scalars/arrays, paths and non-finite floats into JSON-able values."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _history_tsv(history: list[dict[str, Any]]) -> bytes:
    cols: list[str] = []
    for row in history:
        for k in row:
            if k not in cols:
                cols.append(k)
    lines = ["\t".join(cols)]
    for row in history:
        vals = []
        for c in cols:
            v = row.get(c)
            if v is None:
                vals.append("NA")
            elif isinstance(v, float):
                vals.append("NA" if not math.isfinite(v) else f"{v:.6g}")
            else:
                vals.append(str(v))
        lines.append("\t".join(vals))
    return ("\n".join(lines) + "\n").encode("utf-8")


def _torch_bytes(obj: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


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
        One of :data:`MODEL_KINDS`.
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
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    if out.exists() and not force:
        raise UsageError(
            "output already exists", path=out, hint="use --force to replace it, or another path"
        )
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError("output folder does not exist", path=parent, hint="create it first")

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
    config_bytes = _json_bytes(config)
    if kind in TORCH_KINDS:
        if state_dict is None:
            raise ValueError("a torch model needs a state_dict")
        payload = _torch_bytes({k: v.detach().cpu().contiguous() for k, v in state_dict.items()})
        payload_name = WEIGHTS
    else:
        if params is None:
            raise ValueError("a baseline model needs params")
        payload = _json_bytes(params)
        payload_name = PARAMS
    fp = fingerprint_bytes(config_bytes, payload)
    card = dict(model_card)
    card["fingerprint"] = fp
    card.setdefault("model_kind", kind)

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    try:
        tmp.chmod(_dir_mode())  # mkdtemp makes 0700; a model dir is as readable as any folder
        (tmp / CONFIG).write_bytes(config_bytes)
        (tmp / payload_name).write_bytes(payload)
        (tmp / HISTORY).write_bytes(_history_tsv(history))
        (tmp / CARD).write_bytes(_json_bytes(card))
        if cell_prototypes:
            (tmp / CELL_PROTOTYPES).write_bytes(
                _json_bytes({"model_fingerprint": fp, "cells": cell_prototypes})
            )
        if train_state is not None:
            (tmp / TRAIN_STATE).write_bytes(_torch_bytes(train_state))
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return fp


def _dir_mode() -> int:
    """Permissions of a new folder under the current umask (e.g. 0755 with umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def _replace_dir(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` onto ``out``; an existing ``out`` is moved aside first, then removed."""
    if not out.exists():
        os.replace(tmp, out)
        return
    if not out.is_dir():
        raise UsageError("output exists and is not a directory", path=out)
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    old.rmdir()
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


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
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EpcliError(
            f"corrupt model directory: cannot read {what} ({first[:200]})",
            path=path,
            hint="weights are only read as plain tensors; retrain or restore the file",
        ) from None


def load_model_dir(path: str | os.PathLike, verify: bool = True) -> LoadedModel:
    """Read a model directory.

    Parameters
    ----------
    path : path
        The directory ``epcli train`` wrote.
    verify : bool
        Recompute the fingerprint and compare it with the model card's.

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
    if kind not in MODEL_KINDS:
        raise EpcliError(
            f"unknown model kind {kind!r} in {CONFIG}",
            path=p / CONFIG,
            hint="known kinds: " + ", ".join(MODEL_KINDS),
        )
    windows = config.get("windows") or {}
    try:
        windows = {"enhancer": int(windows["enhancer"]), "promoter": int(windows["promoter"])}
    except (KeyError, TypeError, ValueError):
        raise EpcliError(
            f"corrupt model directory: {CONFIG} lacks windows {{enhancer, promoter}}",
            path=p / CONFIG,
        ) from None
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
    card = _read_json(p / CARD, CARD)
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
        model_config=config.get("model") if kind in TORCH_KINDS else None,
        train_config=config.get("train") or {},
        windows=windows,
        state_dict=state_dict,
        params=params,
        model_card=card,
        fingerprint=fp,
        cell_prototypes=cell_protos,
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
    "resolve_model",
    "save_model_dir",
]
