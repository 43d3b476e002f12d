"""File helpers shared by every command: text input with ``-``/gzip, atomic output."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from epcli.errors import EpcliError, UsageError

STDIO = "-"


def display_name(path: str | os.PathLike) -> str:
    """Name used in messages for a path (``<stdin>`` for ``-``)."""
    return "<stdin>" if str(path) == STDIO else str(path)


def read_head(
    path: str | os.PathLike, n: int, what: str = "file", hint: str = "check the path"
) -> bytes:
    """The first ``n`` bytes of a file, with clear errors for a missing/unreadable path.

    Parameters
    ----------
    what : str
        How messages name the file (e.g. ``"genome FASTA"``).
    hint : str
        How to fix a missing file.
    """
    p = Path(path)
    if not p.exists():
        raise EpcliError(f"{what} not found", path=p, hint=hint)
    if p.is_dir():
        raise EpcliError(f"{what} path is a directory, expected a file", path=p)
    try:
        with open(p, "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise EpcliError(f"cannot read {what}: {exc.strerror}", path=p) from None


@contextlib.contextmanager
def open_text_input(path: str | os.PathLike) -> Iterator[IO[str]]:
    """Open a text input: a file, a gzipped file (detected by magic bytes) or ``-``.

    Universal newlines are on, so CRLF files read like LF files.
    """
    if str(path) == STDIO:
        raw = sys.stdin.buffer
        head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        if head == b"\x1f\x8b":
            with gzip.open(raw, "rt", newline=None) as fh:
                yield fh
        else:
            yield io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=None)
        return
    p = Path(path)
    if read_head(p, 2) == b"\x1f\x8b":
        fh: IO[str] = gzip.open(p, "rt", encoding="utf-8", errors="replace", newline=None)
    else:
        fh = open(p, encoding="utf-8", errors="replace", newline=None)
    try:
        yield fh
    except (gzip.BadGzipFile, EOFError) as exc:
        raise EpcliError(f"corrupt gzip file: {exc}", path=p) from None
    finally:
        fh.close()


def check_output_path(path: str | os.PathLike, force: bool) -> None:
    """Refuse to overwrite an existing output without ``--force``; check the folder exists."""
    if str(path) == STDIO:
        return
    p = Path(path)
    if p.exists() and not force:
        raise UsageError(
            "output already exists",
            path=p,
            hint="use --force to replace it, or choose another path",
        )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError("output folder does not exist", path=parent, hint="create it first")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    On any exception the temporary file (or folder) is removed and ``path`` is untouched.
    """
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
    os.close(fd)
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, p)
    except BaseException:
        _remove(tmp_path)
        raise


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        import shutil

        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


@contextlib.contextmanager
def open_text_output(path: str | os.PathLike, force: bool = True) -> Iterator[IO[str]]:
    """Open a text output atomically: ``-`` is stdout, a ``.gz`` name is gzipped.

    A file is written under a temporary name and renamed when the block ends without error.
    """
    if str(path) == STDIO:
        yield sys.stdout
        sys.stdout.flush()
        return
    check_output_path(path, force)
    with atomic_path(path) as tmp:
        if str(path).endswith(".gz"):
            with gzip.open(tmp, "wt", encoding="utf-8", newline="\n") as fh:
                yield fh
        else:
            with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                yield fh


def check_not_input(output: str | os.PathLike, inputs: list[str | os.PathLike]) -> None:
    """Refuse to write ``output`` over one of the ``inputs``, even with ``--force``.

    Raises
    ------
    UsageError
        When ``output`` names the same file as an input (same path, or a link to it).
    """
    if str(output) == STDIO:
        return
    out = Path(output)
    for item in inputs:
        if str(item) == STDIO:
            continue
        src = Path(item)
        same = out.resolve() == src.resolve()
        if not same and out.exists() and src.exists():
            same = os.path.samefile(out, src)
        if same:
            raise UsageError(
                "output would overwrite an input",
                path=out,
                hint="write to another file",
            )
