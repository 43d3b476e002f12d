"""Fixtures shared by tests/ and benchmarks/tests/: an in-process CLI runner and a tiny genome."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import TEST_DATA, CliResult


@pytest.fixture
def cli(capsys):
    """Run ``epcli ARGS`` in-process; returns a :class:`CliResult`."""
    from epcli.cli import main

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture
def tiny_genome(tmp_path: Path) -> Path:
    """A copy of the tiny two-contig genome (chrA 100 bp, chrB 60 bp) in a fresh folder."""
    dst = tmp_path / "genome" / "tiny.fa"
    dst.parent.mkdir()
    shutil.copy(TEST_DATA / "tiny.fa", dst)
    return dst
