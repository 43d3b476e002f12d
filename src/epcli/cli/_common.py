"""Pieces shared by the command modules: error handling, logging to stderr."""

from __future__ import annotations

import contextlib
import sys

import typer
from rich.console import Console

from epcli.errors import EXIT_DATA, EXIT_USAGE, EpcliError

#: All human-facing output goes to stderr; stdout is for data.
console = Console(stderr=True, highlight=False)


def log(message: str) -> None:
    """Print a log line on stderr."""
    console.print(message, markup=False, soft_wrap=True)


def warn(message: str) -> None:
    """Print a warning on stderr."""
    console.print(f"warning: {message}", style="yellow", markup=False, soft_wrap=True)


def fail(exc: EpcliError) -> None:
    """Report a user error on stderr and exit with its code."""
    console.print(f"error: {exc}", style="bold red", markup=False, soft_wrap=True)
    raise SystemExit(exc.exit_code)


def run_guarded(app: typer.Typer, argv: list[str]) -> None:
    """Run the Typer app, turning user errors into one-line messages and exit codes."""
    try:
        app(args=argv, prog_name="epcli", standalone_mode=True)
    except EpcliError as exc:
        fail(exc)
    except KeyboardInterrupt:
        console.print("interrupted", style="red")
        raise SystemExit(130) from None
    except BrokenPipeError:
        # Downstream closed the pipe (e.g. `| head`); not an error of ours.
        try:
            sys.stdout = None  # type: ignore[assignment]
        finally:
            raise SystemExit(0) from None


def not_built(name: str) -> None:
    """Exit 1 for a command that exists but is not implemented yet."""
    fail(EpcliError(f"'epcli {name}' is not available in this version yet"))


__all__ = [
    "EXIT_DATA",
    "EXIT_USAGE",
    "apply_threads",
    "console",
    "fail",
    "log",
    "not_built",
    "progress_counter",
    "warn",
]


@contextlib.contextmanager
def progress_counter(label: str, unit: str = "pairs", total: int | None = None):
    """Progress on stderr (:func:`epcli.progress.progress`); yields ``update(n_done)``.

    A bar with rate and ETA on a terminal; a plain line every few seconds otherwise.
    """
    from epcli.progress import progress

    with progress(label, unit=unit, total=total, console=console) as update:
        yield update


def apply_threads(threads: int | None) -> None:
    """Set the CPU threads of torch and the BLAS/OpenMP pools (``--threads``), and log it."""
    if threads is None:
        return
    from epcli.threads import set_threads

    set_threads(threads)
    log(f"threads: {threads}")
