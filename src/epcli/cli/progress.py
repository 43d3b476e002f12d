"""Progress of long commands on stderr: one helper shared by every command.

Library functions take a plain ``progress(done)`` callback and know nothing of terminals; the
command modules make the callback with :func:`progress`:

- on a terminal, a rich bar with the count, the rate (e.g. pairs/s) and the ETA;
- otherwise (log files, a cluster job's stderr), one plain line every ``interval`` seconds,
  e.g. ``predict: 120,000/1,000,000 pairs (12.0%), 2,889 pairs/s, elapsed 41s, ETA 5m04s``,
  and a last ``done`` line when at least one line was printed.

The environment can choose: ``EPCLI_PROGRESS`` = ``auto`` (default), ``bar``, ``plain`` or
``off``; ``EPCLI_PROGRESS_INTERVAL`` = seconds between plain lines (default 30).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

#: Environment variable choosing the mode.
ENV_MODE = "EPCLI_PROGRESS"
#: Environment variable with the seconds between plain lines.
ENV_INTERVAL = "EPCLI_PROGRESS_INTERVAL"
#: Default seconds between plain lines.
DEFAULT_INTERVAL = 30.0
MODES = ("auto", "bar", "plain", "off")


def format_duration(seconds: float) -> str:
    """``3725.4`` -> ``"1h02m05s"``; ``65`` -> ``"1m05s"``; ``7.2`` -> ``"7s"``."""
    s = max(int(round(seconds)), 0)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


def format_rate(rate: float) -> str:
    """``2889.4`` -> ``"2,889"``; below 10, two significant digits (``0.062`` -> ``"0.062"``)."""
    return f"{rate:,.0f}" if rate >= 10 or rate == 0 else f"{rate:.2g}"


def progress_line(
    label: str, done: int, total: int | None, unit: str, elapsed: float, final: bool = False
) -> str:
    """One plain progress line (see the module docstring)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    if final:
        took = format_duration(elapsed)
        return f"{label}: done, {done:,} {unit} in {took} ({format_rate(rate)} {unit}/s)"
    if total:
        text = f"{label}: {done:,}/{total:,} {unit} ({100 * done / total:.1f}%)"
    else:
        text = f"{label}: {done:,} {unit}"
    text += f", {format_rate(rate)} {unit}/s, elapsed {format_duration(elapsed)}"
    if total and rate > 0 and done < total:
        text += f", ETA {format_duration((total - done) / rate)}"
    return text


class PlainProgress:
    """Prints a plain progress line at most every ``interval`` seconds.

    Parameters
    ----------
    label : str
    unit : str
    total : int, optional
    stream : text stream
    interval : float
        Seconds between lines; the first line comes ``interval`` seconds after the start.
    clock : callable
        Returns the time in seconds (tests pass a fake clock).
    """

    def __init__(
        self,
        label: str,
        unit: str,
        total: int | None,
        stream: IO[str],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.unit, self.total = label, unit, total
        self.stream, self.interval, self.clock = stream, interval, clock
        self.start = clock()
        self.next_at = self.start + interval
        self.done = 0
        self.printed = 0

    def __call__(self, done: int) -> None:
        """Report ``done`` units so far."""
        self.done = int(done)
        now = self.clock()
        if now >= self.next_at:
            self._print(
                progress_line(self.label, self.done, self.total, self.unit, now - self.start)
            )
            self.next_at = now + self.interval

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self.printed += 1

    def close(self) -> None:
        """Print the ``done`` line when the run lasted long enough to print any line."""
        if self.printed:
            elapsed = self.clock() - self.start
            self._print(progress_line(self.label, self.done, self.total, self.unit, elapsed, True))


def resolve_mode(mode: str | None, is_terminal: bool) -> str:
    mode = (mode or os.environ.get(ENV_MODE) or "auto").strip().lower()
    if mode not in MODES:
        mode = "auto"
    if mode == "auto":
        return "bar" if is_terminal else "plain"
    return mode


def _resolve_interval(interval: float | None) -> float:
    if interval is not None:
        return float(interval)
    try:
        return float(os.environ.get(ENV_INTERVAL, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL


@contextlib.contextmanager
def progress(
    label: str,
    *,
    unit: str = "pairs",
    total: int | None = None,
    console: Any = None,
    mode: str | None = None,
    interval: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Callable[[int], None]]:
    """Show progress on stderr; yields ``update(done)``.

    Parameters
    ----------
    label : str
        Name of the step (e.g. ``"predict"``).
    unit : str
        What is counted (``"pairs"``, ``"steps"``).
    total : int, optional
        Expected count (gives a percentage and an ETA).
    console : rich.console.Console, optional
        Where the bar is drawn (the commands' stderr console); default a new stderr console.
    mode : {"auto", "bar", "plain", "off"}, optional
        Default: ``$EPCLI_PROGRESS``, else ``auto`` (bar on a terminal, plain lines otherwise).
    interval : float, optional
        Seconds between plain lines; default ``$EPCLI_PROGRESS_INTERVAL``, else 30.
    clock : callable
        Time source of the plain lines.
    """
    if console is None:
        from rich.console import Console

        console = Console(stderr=True, highlight=False)
    chosen = resolve_mode(mode, bool(console.is_terminal))
    if chosen == "off":
        yield lambda n: None
        return
    if chosen == "plain":
        plain = PlainProgress(
            label, unit, total, console.file or sys.stderr, _resolve_interval(interval), clock
        )
        try:
            yield plain
        finally:
            plain.close()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:  # noqa: ANN001
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{format_rate(speed)} {unit}/s")

    columns = [
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn() if total else TextColumn("{task.completed:,}"),
        TextColumn(unit),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.update(task, completed=n)


__all__ = ["PlainProgress", "format_duration", "format_rate", "progress", "progress_line"]
