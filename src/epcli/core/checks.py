"""Checks shared by every config: a value against its dataclass annotation."""

from __future__ import annotations

import math
from typing import Any

from epcli.core.errors import EpcliError, UsageError


def check_type(what: str, name: str, value: Any, annotation: Any, error: type = EpcliError) -> None:
    """Check a config field's value against its dataclass annotation.

    Parameters
    ----------
    what : str
        How messages name the config (``"model config"``, ``"training option"``).
    name, value, annotation
        The field, its value and its annotation (``int``, ``float | None``,
        ``tuple[int, ...]`` of ints, ``list[str] | None`` of strings, ...).
    error : type
        Exception class raised (an :class:`EpcliError` subclass).
    """
    ann = str(annotation)
    if value is None:
        ok = "None" in ann
    elif ann.startswith("bool"):
        ok = isinstance(value, bool)
    elif ann.startswith("int"):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif ann.startswith("float"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif ann.startswith("str"):
        ok = isinstance(value, str)
    elif ann.startswith("tuple"):
        ok = isinstance(value, (tuple, list)) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
    elif ann.startswith("list"):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:  # pragma: no cover - every field type is covered above
        ok = True
    if not ok:
        raise error(f"{what} {name}={value!r} has the wrong type", hint=f"expected {ann}")
    if isinstance(value, float) and not math.isfinite(value):
        raise error(f"{what} {name}={value!r} is not a finite number", hint=f"expected {ann}")


def check_target_recall(value: float) -> float:
    """A target recall must lie in (0, 1] (``--target-recall`` of adapt and evaluate).

    Raises
    ------
    UsageError
    """
    if not 0.0 < value <= 1.0:
        raise UsageError(f"--target-recall must be in (0, 1], got {value}")
    return float(value)
