"""The model directory's marker (``epcli_model.json``: an epcli directory, complete or not) and
what ``--force`` may replace: only an epcli model directory holding only model files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import epcli
from epcli.core.errors import UsageError
from epcli.io.serialize import json_bytes

CONFIG = "config.json"
WEIGHTS = "weights.pt"
PARAMS = "params.json"
HISTORY = "history.tsv"
CARD = "model_card.json"
CELL_PROTOTYPES = "cell_prototypes.json"
TRAIN_STATE = "train_state.pt"
MARKER = "epcli_model.json"
INCOMPLETE = "INCOMPLETE"
#: Every name an epcli model directory may hold; ``--force`` refuses a directory with others.
KNOWN_FILES = (
    CONFIG,
    WEIGHTS,
    PARAMS,
    HISTORY,
    CARD,
    CELL_PROTOTYPES,
    TRAIN_STATE,
    MARKER,
    INCOMPLETE,
)


#: ``epcli_model.json`` format marker.
MARKER_FORMAT = "epcli-model-dir"


#: ``config.json`` format marker and version.
CONFIG_FORMAT = "epcli-model"


def marker_bytes(status: str, **info: Any) -> bytes:
    return json_bytes(
        {
            "format": MARKER_FORMAT,
            "version": 1,
            "status": status,
            "epcli_version": epcli.__version__,
            **info,
        }
    )


def read_marker(path: str | os.PathLike) -> dict[str, Any] | None:
    """The directory's ``epcli_model.json`` as a dict, or None when absent or unreadable."""
    try:
        d = json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) and d.get("format") == MARKER_FORMAT else None


def mark_incomplete(path: str | os.PathLike, note: str | None = None, **info: Any) -> None:
    """Mark a model directory as not (yet) a finished model: the marker's status and a short
    ``INCOMPLETE`` note for whoever lists the folder."""
    from epcli.io.files import write_bytes_atomic

    p = Path(path)
    write_bytes_atomic(p / MARKER, marker_bytes("incomplete", **info))
    text = note or "This model directory is incomplete: training has not finished.\n"
    write_bytes_atomic(p / INCOMPLETE, text.encode("utf-8"))


def is_model_dir(path: str | os.PathLike) -> bool:
    """True for a directory epcli made: it has the marker, or (written before markers
    existed) a ``config.json`` with format ``epcli-model``."""
    p = Path(path)
    if read_marker(p) is not None:
        return True
    try:
        d = json.loads((p / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(d, dict) and d.get("format") == CONFIG_FORMAT


def _list(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def check_replaceable(path: str | os.PathLike) -> None:
    """Raise :class:`UsageError` unless ``--force`` may replace ``path``: an epcli model
    directory holding nothing but model files (leftover temporary files included).

    Raises
    ------
    UsageError
        Naming what the directory holds, when it is not a model directory or holds other
        files; nothing is deleted.
    """
    p = Path(path)
    entries = sorted(e.name for e in p.iterdir())
    if not entries:
        return
    if not is_model_dir(p):
        shown = _list(entries)
        raise UsageError(
            f"--force replaces only an epcli model directory, and this is not one (it holds "
            f"{shown})",
            path=p,
            hint="choose a new -o directory; nothing was deleted",
        )
    leftover = [e for e in entries if e.startswith(".") and e.endswith(".tmp")]
    other = [e for e in entries if e not in KNOWN_FILES and e not in leftover]
    if other:
        shown = _list(other)
        raise UsageError(
            f"--force would delete files that epcli did not write: {shown}",
            path=p,
            hint="move them out of the model directory, or choose a new -o; nothing was deleted",
        )
