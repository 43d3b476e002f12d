"""The torch device of a ``--device`` value (the one rule for device names)."""

from __future__ import annotations

from epcli.core.errors import UsageError


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

    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(
                "--device cuda was requested but CUDA is not available on this machine",
                hint="use --device cpu or auto, or install a CUDA build of torch",
            )
        return torch.device(name)
    raise UsageError(f"unknown device {name!r}", hint="one of auto, cpu, cuda")
