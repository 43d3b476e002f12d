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


__all__ = ["EXIT_DATA", "EXIT_USAGE", "console", "fail", "log", "warn", "not_built"]


@contextlib.contextmanager
def progress_counter(label: str, unit: str = "pairs", total: int | None = None):
    """A progress display on stderr; yields ``advance(n_done)``.

    Silent when stderr is not a terminal (logs in shell pipelines stay clean).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not console.is_terminal:
        yield lambda n: None
        return
    columns = [TextColumn(f"{label}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit)]
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as prog:
        task = prog.add_task(label, total=total)
        yield lambda n: prog.update(task, completed=n)
