"""User-facing errors.

Library code raises :class:`EpcliError` for anything a user can fix (bad input, bad
options); the CLI turns it into a one-line message on stderr and an exit code, never a
traceback. Programming errors are left to propagate.
"""

from __future__ import annotations

import os

#: Exit code for bad data (a file's content is wrong).
EXIT_DATA = 1
#: Exit code for bad usage (options that do not fit together, unknown names).
EXIT_USAGE = 2


class EpcliError(Exception):
    """An error the user can fix.

    Parameters
    ----------
    message : str
        What is wrong.
    path : str or os.PathLike, optional
        The file the problem is in.
    line : int, optional
        1-based line number in ``path``.
    hint : str, optional
        How to fix it.
    exit_code : int
        :data:`EXIT_DATA` (default) or :data:`EXIT_USAGE`.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike | None = None,
        line: int | None = None,
        hint: str | None = None,
        exit_code: int = EXIT_DATA,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where += ": "
        text = where + self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class UsageError(EpcliError):
    """Bad usage: options that do not fit together, unknown names (exit code 2)."""

    def __init__(self, message: str, **kw) -> None:
        kw.setdefault("exit_code", EXIT_USAGE)
        super().__init__(message, **kw)


class EpcliWarning(UserWarning):
    """Something the user should know that does not stop the command; the CLI prints it as
    one ``warning:`` line on stderr."""
