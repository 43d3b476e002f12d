"""Pieces shared by the command modules: error handling, logging to stderr."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import warnings

import typer
from rich.console import Console

from epcli.core.errors import EXIT_DATA, EXIT_USAGE, EpcliError

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
    """Run the Typer app, turning user errors into one-line messages and exit codes.

    SIGINT and SIGTERM are handled alike (:func:`epcli.io.files.signals_raise`): the command
    unwinds, every atomic writer removes its temporary file, and the exit code is 128 + the
    signal number. A closed stdout (``| head``) stops the command quietly, as coreutils do.
    """
    from epcli.io.files import Interrupted, PipeClosed, pending_signal, signals_raise

    try:
        with signals_raise(), warnings.catch_warnings():
            _route_warnings()
            app(args=argv, prog_name="epcli", standalone_mode=True)
    except (Interrupted, KeyboardInterrupt) as exc:
        _interrupted(getattr(exc, "signum", None) or pending_signal() or signal.SIGINT)
    except (PipeClosed, BrokenPipeError):
        _quiet_stdout()
        raise SystemExit(141) from None  # 128 + SIGPIPE, what a coreutils tool reports
    except Exception as exc:
        if pending_signal() is not None:  # a library turned the signal into another error
            _interrupted(pending_signal())
        if isinstance(exc, EpcliError):
            fail(exc)
        if isinstance(exc, OSError):
            where = f"{exc.filename}: " if exc.filename else ""
            console.print(
                f"error: {where}{exc.strerror or exc}",
                style="bold red",
                markup=False,
                soft_wrap=True,
            )
            raise SystemExit(EXIT_DATA) from None
        raise
    if pending_signal() is not None:
        _interrupted(pending_signal())


def _interrupted(signum: int) -> None:
    """Report SIGINT/SIGTERM and exit with 128 + its number."""
    name = signal.Signals(signum).name
    console.print(
        f"error: interrupted by {name}; partial output was removed", style="red", markup=False
    )
    raise SystemExit(128 + int(signum))


def _route_warnings() -> None:
    """epcli's own warnings (:class:`~epcli.core.errors.EpcliWarning`) become one ``warning:``
    line each on stderr; other libraries' warnings are silenced (stderr carries epcli's
    messages only) unless ``python -W`` / ``PYTHONWARNINGS`` asks for them."""
    from epcli.core.errors import EpcliWarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, EpcliWarning):
            warn(str(message))
        else:
            console.print(
                f"warning: {str(message).strip().splitlines()[0]}", markup=False, soft_wrap=True
            )

    warnings.showwarning = show
    if not sys.warnoptions:
        warnings.simplefilter("ignore")
    warnings.simplefilter("default", EpcliWarning)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


__all__ = [
    "EXIT_DATA",
    "EXIT_USAGE",
    "apply_threads",
    "console",
    "fail",
    "log",
    "progress_counter",
    "warn",
]


@contextlib.contextmanager
def progress_counter(label: str, unit: str = "pairs", total: int | None = None):
    """Progress on stderr (:func:`epcli.cli.progress.progress`); yields ``update(n_done)``.

    A bar with rate and ETA on a terminal; a plain line every few seconds otherwise.
    """
    from epcli.cli.progress import progress

    with progress(label, unit=unit, total=total, console=console) as update:
        yield update


def apply_threads(threads: int | None) -> None:
    """Set the CPU threads of torch and the BLAS/OpenMP pools (``--threads``), and log it."""
    if threads is None:
        return
    from epcli.core.threads import set_threads

    set_threads(threads)
    log(f"threads: {threads}")
