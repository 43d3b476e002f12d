"""The shared progress helper: plain lines off a terminal, the bar's mode choice, --threads."""

from __future__ import annotations

import io

from helpers import write_text


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_plain_lines_every_interval_with_rate_and_eta():
    from rich.console import Console

    from epcli.cli.progress import progress

    buf = io.StringIO()
    clock = FakeClock()
    console = Console(file=buf, force_terminal=False)
    with progress(
        "predict", unit="pairs", total=1000, console=console, interval=10, clock=clock
    ) as update:
        clock.t += 5
        update(100)  # before the first interval: silent
        assert buf.getvalue() == ""
        clock.t += 5
        update(200)  # 10 s: 20 pairs/s, 800 left -> ETA 40 s
        clock.t += 3
        update(260)  # 3 s after the last line: silent
        clock.t += 7
        update(400)  # 20 s: 20 pairs/s
        clock.t += 30
        update(1000)
    lines = buf.getvalue().splitlines()
    assert lines == [
        "predict: 200/1,000 pairs (20.0%), 20 pairs/s, elapsed 10s, ETA 40s",
        "predict: 400/1,000 pairs (40.0%), 20 pairs/s, elapsed 20s, ETA 30s",
        "predict: 1,000/1,000 pairs (100.0%), 20 pairs/s, elapsed 50s",
        "predict: done, 1,000 pairs in 50s (20 pairs/s)",
    ]


def test_plain_unknown_total_and_short_runs_stay_quiet():
    from rich.console import Console

    from epcli.cli.progress import progress

    buf = io.StringIO()
    clock = FakeClock()
    console = Console(file=buf, force_terminal=False)
    with progress("candidates", console=console, interval=60, clock=clock) as update:
        clock.t += 1
        update(5)
    assert buf.getvalue() == ""  # a run shorter than the interval prints nothing
    with progress("candidates", console=console, interval=1, clock=clock) as update:
        clock.t += 2
        update(3_000_000)
    assert buf.getvalue().splitlines()[0] == (
        "candidates: 3,000,000 pairs, 1,500,000 pairs/s, elapsed 2s"
    )


def test_mode_choice(monkeypatch):
    from epcli.cli.progress import format_duration, resolve_mode

    monkeypatch.delenv("EPCLI_PROGRESS", raising=False)
    assert resolve_mode(None, True) == "bar"
    assert resolve_mode(None, False) == "plain"
    monkeypatch.setenv("EPCLI_PROGRESS", "off")
    assert resolve_mode(None, True) == "off"
    assert resolve_mode("plain", True) == "plain"
    assert format_duration(3725.4) == "1h02m05s"
    from epcli.cli.progress import format_rate

    assert (format_rate(0.0621), format_rate(2889.4)) == ("0.062", "2,889")


def test_bar_mode_on_a_terminal_draws_rate():
    from rich.console import Console

    from epcli.cli.progress import progress

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    with progress("prepare", total=10, console=console, mode="bar") as update:
        update(10)
    assert "prepare" in buf.getvalue()


def test_cli_prints_plain_progress_lines(cli, tmp_path, monkeypatch):
    """Off a terminal (as under a cluster scheduler), a long command logs plain lines."""
    monkeypatch.setenv("EPCLI_PROGRESS_INTERVAL", "0")
    e = write_text(tmp_path / "e.bed", "chrA\t1\t5\tE\nchrA\t30\t50\tE2\n")
    p = write_text(tmp_path / "p.bed", "chrA\t10\t20\tP\n")
    r = cli("candidates", e, p)
    assert r.code == 0, r.stderr
    assert "candidates: 2/2 pairs (100.0%)" in r.stderr
    assert "candidates: done, 2 pairs in" in r.stderr
    pairs = tmp_path / "pairs.bedpe"
    pairs.write_text(r.stdout)
    r = cli("predict", pairs, "--threads", 1)
    assert r.code == 0, r.stderr
    assert "threads: 1" in r.stderr
    assert "predict: 2/2 pairs (100.0%)" in r.stderr


def test_set_threads(monkeypatch):
    import pytest
    import torch

    from epcli.core.errors import UsageError
    from epcli.core.threads import set_threads

    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(UsageError):
        set_threads(0)
