"""The torch device of a ``--device`` value: the one rule for device names, shared by
``train``, ``adapt``, ``predict`` and ``explain``."""

from __future__ import annotations

import re

from epcli.core.errors import UsageError

#: Device names every command accepts.
DEVICE_HELP = "auto, cpu, cuda or cuda:N"


def check_device_name(name: str | None) -> str:
    """Normalise a ``--device`` value: ``auto`` (None), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises
    ------
    UsageError
        Any other name (exit 2), before a model is loaded.
    """
    value = (name or "auto").strip().lower()
    if value in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", value):
        return value
    raise UsageError(f"unknown device {name!r}", hint=f"use one of {DEVICE_HELP}")


def resolve_device(name: str | None = "auto"):
    """The torch device for a ``--device`` value.

    Parameters
    ----------
    name : {"auto", "cpu", "cuda", "cuda:N"}
        ``auto`` is CUDA when available, else CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    UsageError
        When CUDA is requested but not available (never a silent fallback), or the name is
        unknown.
    """
    import torch

    name = check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UsageError(
            "--device cuda was requested but CUDA is not available on this machine",
            hint="use --device cpu or auto, or install a CUDA build of torch",
        )
    return torch.device(name)
