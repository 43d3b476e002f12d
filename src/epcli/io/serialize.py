"""Bytes of a model directory's files: JSON (numpy values and non-finite floats made
JSON-able), the history TSV, torch objects, and the model fingerprint over them."""

from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any


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


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n").encode(
        "utf-8"
    )


def jsonable(obj: Any) -> Any:
    """Turn numpy scalars/arrays, paths and non-finite floats into JSON-able values."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
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


def history_tsv(history: list[dict[str, Any]]) -> bytes:
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


def torch_bytes(obj: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()
