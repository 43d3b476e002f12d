"""File helpers shared by every command: text input with ``-``/gzip, atomic output, the
output-path check, and signal handling for atomic writers."""

from __future__ import annotations

import contextlib
import gzip
import os
import signal
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

from epcli.core.errors import EpcliError, UsageError

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


# ------------------------------------------------------------------------ text input
_BOM = b"\xef\xbb\xbf"
#: Errors a damaged gzip stream raises while it is read.
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


class TextLines:
    """The decoded lines of a text input (strict UTF-8, universal newlines).

    Iterating yields each line with its line end; a byte-order mark before the first line is
    dropped; invalid UTF-8 raises :class:`EpcliError` naming the line; a truncated or corrupt
    gzip stream raises :class:`EpcliError` (nothing read so far is kept by the callers).
    """

    def __init__(self, raw: IO[bytes], where: str, gz: bool) -> None:
        self.raw = raw
        self.where = where
        self.gz = gz
        self.line_no = 0

    def __iter__(self) -> Iterator[str]:
        first = True
        try:
            for raw in self.raw:
                if first:
                    first = False
                    if raw.startswith(_BOM):
                        raw = raw[len(_BOM) :]
                # universal newlines: a lone CR ends a line too
                parts = raw.split(b"\r") if b"\r" in raw.rstrip(b"\r\n") else (raw,)
                for part in parts:
                    self.line_no += 1
                    try:
                        yield part.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise EpcliError(
                            f"invalid UTF-8 (byte {part[exc.start : exc.start + 1]!r} at "
                            f"column {exc.start + 1})",
                            path=self.where,
                            line=self.line_no,
                            hint="save the file as UTF-8 (or plain ASCII) text",
                        ) from None
        except _GZIP_ERRORS as exc:
            if not self.gz:
                raise
            raise EpcliError(
                f"truncated/corrupt gzip file ({_gzip_reason(exc)}) after line {self.line_no}",
                path=self.where,
                hint="download or compress the file again; nothing was written",
            ) from None

    def read(self) -> str:
        """The whole remaining text."""
        return "".join(self)


def _gzip_reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.rstrip(".")


@contextlib.contextmanager
def open_text_input(path: str | os.PathLike) -> Iterator[TextLines]:
    """Open a text input: a file, a gzipped file (detected by magic bytes) or ``-``.

    Yields a :class:`TextLines`: universal newlines (CRLF and CR files read like LF files),
    strict UTF-8 with the line of any bad byte, a leading byte-order mark dropped, and a
    truncated or corrupt gzip stream reported as an error rather than read as far as it goes.
    """
    where = display_name(path)
    if str(path) == STDIO:
        raw = sys.stdin.buffer
        head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        if head == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=raw, mode="rb") as fh:
                yield TextLines(fh, where, gz=True)
        else:
            yield TextLines(raw, where, gz=False)
        return
    p = Path(path)
    gz = read_head(p, 2) == b"\x1f\x8b"
    try:
        fh: IO[bytes] = gzip.open(p, "rb") if gz else open(p, "rb")
    except OSError as exc:
        raise EpcliError(f"cannot read file: {exc.strerror}", path=p) from None
    try:
        yield TextLines(fh, where, gz=gz)
    finally:
        fh.close()


# ----------------------------------------------------------------------- output paths
def _real(p: Path) -> Path:
    return Path(os.path.realpath(p))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return _real(a) == _real(b)


def _inside(child: Path, parent: Path) -> bool:
    c, p = _real(child), _real(parent)
    return c == p or p in c.parents


def check_output_path(
    path: str | os.PathLike,
    force: bool,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    what: str = "output",
    no_stdout: str | None = None,
    directory: bool = False,
    replaceable: Callable[[Path], None] | None = None,
) -> None:
    """The one check of an output path, before any work (every command calls it).

    Refuses (:class:`UsageError`, exit 2): ``-`` where stdout cannot hold the output
    (``no_stdout`` says why); an output that is one of the ``inputs`` (same file after
    resolving links, or a file inside an input directory); a directory output that contains
    an input or the current directory; an existing output without ``force``; a file output
    that is a directory and the reverse; a missing or unwritable folder. With ``force`` an
    existing directory output is replaced only when ``replaceable(path)`` accepts it.

    Parameters
    ----------
    path : path-like
        The output (``-`` = stdout).
    force : bool
        ``--force`` was given.
    inputs : paths
        Every file or directory the command reads (``None`` and ``-`` are skipped).
    what : str
        How messages name the output (``"HDF5 dataset"``, ``"model directory"``, ...).
    no_stdout : str, optional
        Why the output cannot go to stdout; None allows ``-``.
    directory : bool
        The output is a directory (``epcli train``'s model directory).
    replaceable : callable, optional
        Raises :class:`UsageError` unless an existing directory may be replaced.
    """
    text = str(path)
    if text == STDIO:
        if no_stdout is not None:
            raise UsageError(
                f"-o - (stdout) cannot be used here: the {what} {no_stdout}",
                hint="give a path with -o",
            )
        return
    if text.strip() == "":
        raise UsageError(f"the {what} path is empty", hint="give a path with -o")
    p = Path(path)
    for inp in inputs:
        if inp is None or str(inp) == STDIO:
            continue
        q = Path(inp)
        if not q.exists():
            continue
        if q.is_dir() and not directory:
            if p.exists() and _inside(p, q):
                raise UsageError(
                    f"the {what} {p} would replace a file inside the input directory {q}",
                    hint="write the output somewhere else",
                )
            continue
        if _same_file(p, q):
            raise UsageError(
                f"the {what} {p} is the input {q}",
                hint="choose another output path; an input is never replaced",
            )
        if directory and _inside(q, p):
            raise UsageError(
                f"the {what} {p} contains the input {q}",
                hint="choose another output directory; an input is never replaced",
            )
    if directory and p.exists() and _inside(Path.cwd(), p):
        raise UsageError(
            f"the {what} {p} is the current directory (or holds it)",
            hint="choose a new directory, e.g. -o model",
        )
    if p.exists() or p.is_symlink():
        if directory:
            if not p.is_dir():
                raise UsageError(
                    f"the {what} exists and is not a directory", path=p, hint="choose a new path"
                )
            if not force:
                raise UsageError(
                    "output already exists",
                    path=p,
                    hint="use --force to replace it, or choose another path",
                )
            if replaceable is not None:
                replaceable(p)
        else:
            if p.is_dir():
                raise UsageError(
                    f"the {what} is an existing directory, expected a file path",
                    path=p,
                    hint="give a file name, e.g. -o " + str(p / "out"),
                )
            if not force:
                raise UsageError(
                    "output already exists",
                    path=p,
                    hint="use --force to replace it, or choose another path",
                )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise UsageError("output folder does not exist", path=parent, hint="create it first")
    if not parent.is_dir():
        raise UsageError("output folder is not a directory", path=parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError("cannot write in the output folder (permission denied)", path=parent)


def check_distinct_inputs(paths: Sequence[str | os.PathLike], what: str = "input") -> None:
    """Refuse the same file given twice as input (e.g. ``epcli train a.h5 a.h5``, which would
    count every pair twice)."""
    seen: list[Path] = []
    for path in paths:
        if str(path) == STDIO:
            continue
        p = Path(path)
        for q in seen:
            if p.exists() and _same_file(p, q):
                raise UsageError(
                    f"the same {what} is given twice: {q} and {p}",
                    hint="give each file once",
                )
        seen.append(p)


def check_distinct_outputs(paths: Sequence[str | os.PathLike | None]) -> None:
    """Refuse two outputs of one command that are the same file (``-`` may appear once)."""
    seen: list[Path] = []
    n_stdout = 0
    for path in paths:
        if path is None:
            continue
        if str(path) == STDIO:
            n_stdout += 1
            if n_stdout > 1:
                raise UsageError("two outputs cannot both go to stdout ('-')")
            continue
        p = Path(path)
        for q in seen:
            if _real(p) == _real(q):
                raise UsageError(f"two outputs name the same file: {p}", hint="give each its own")
        seen.append(p)


# ---------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    On any exception - including :class:`Interrupted` (SIGINT, SIGTERM) - the temporary
    file (or folder) is removed and ``path`` is untouched.
    """
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
    os.close(fd)
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if _pending is not None:  # a signal whose exception some callback swallowed
            raise Interrupted(_pending)
        os.replace(tmp_path, p)
    except BaseException:
        _remove(tmp_path)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, flushed to disk, then renamed."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


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
    A reader of stdout that goes away (``| head``) raises :class:`PipeClosed`.
    """
    if str(path) == STDIO:
        try:
            yield sys.stdout
            sys.stdout.flush()
        except BrokenPipeError:
            raise PipeClosed() from None
        return
    check_output_path(path, force)
    with atomic_path(path) as tmp:
        if str(path).endswith(".gz"):
            with gzip.open(tmp, "wt", encoding="utf-8", newline="\n") as fh:
                yield fh
        else:
            with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                yield fh


# ---------------------------------------------------------------------------- signals
class Interrupted(BaseException):  # noqa: N818 - it is a signal, not an error
    """SIGINT or SIGTERM arrived.

    Raised by the handlers :func:`signals_raise` installs, so that every atomic writer
    unwinds and removes its temporary file, exactly as for Ctrl-C. It derives from
    BaseException (not KeyboardInterrupt) so that no library turns it into something else.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def name(self) -> str:
        """``SIGINT`` / ``SIGTERM``."""
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """128 + the signal number (130 for SIGINT, 143 for SIGTERM), as shells report."""
        return 128 + self.signum


class PipeClosed(BaseException):  # noqa: N818 - a condition, not an error
    """The reader of stdout went away (``epcli predict ... | head``)."""


#: Signals that stop a command cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _install(handler) -> dict[int, object] | None:
    try:
        return {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    except ValueError:  # not the main thread: leave the process's handlers alone
        return None


def _restore(previous: dict[int, object] | None) -> None:
    if previous:
        for s, h in previous.items():
            signal.signal(s, h)


#: The signal :func:`signals_raise` caught, kept even when its exception was swallowed.
_pending: int | None = None


def pending_signal() -> int | None:
    """The SIGINT/SIGTERM received under :func:`signals_raise`, if any."""
    return _pending


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM raise :class:`Interrupted` (the CLI wraps every
    command in it), so both clean up the same way; the previous handlers come back after.

    The signal is also remembered (:func:`pending_signal`): an exception raised where
    Python ignores it (a weakref callback, a destructor) or where a C library turns it into
    another error must still stop the command, and :func:`atomic_path` never commits a file
    after a signal.
    """
    global _pending

    def handler(signum, _frame):
        global _pending
        _pending = signum
        raise Interrupted(signum)

    def unraisable(info):  # "Exception ignored in ..." for our own signal: stay quiet
        if not isinstance(info.exc_value, Interrupted):
            previous_hook(info)

    _pending = None
    previous_hook = sys.unraisablehook
    sys.unraisablehook = unraisable
    previous = _install(handler)
    try:
        yield
    finally:
        _restore(previous)
        sys.unraisablehook = previous_hook


class StopRequest:
    """Set by :func:`deferred_signals` when SIGINT or SIGTERM arrives."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        """Name of the signal that arrived (empty when none did)."""
        return "" if self.signum is None else signal.Signals(self.signum).name


@contextlib.contextmanager
def deferred_signals() -> Iterator[StopRequest]:
    """Within the block SIGINT and SIGTERM only set the yielded :class:`StopRequest`, so a
    long loop can finish its step, save and stop; a second signal raises
    :class:`Interrupted` at once."""
    stop = StopRequest()

    def handler(signum, _frame):
        if stop.signum is not None:
            raise Interrupted(signum)
        stop.signum = signum

    previous = _install(handler)
    try:
        yield stop
    finally:
        _restore(previous)
