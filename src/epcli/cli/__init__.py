"""The ``epcli`` command line: a thin Typer layer over the library modules.

Each command lives in its own module (``epcli.cli.<command>``) and only parses options,
validates them, calls the library and writes outputs. User errors
(:class:`epcli.core.errors.EpcliError`) become one line on stderr and exit code 1 (bad data) or
2 (bad usage), never a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from epcli import __version__
from epcli.cli import adapt, candidates, evaluate, explain, info, predict, prepare, train
from epcli.cli._common import run_guarded

app = typer.Typer(
    name="epcli",
    help="Predict enhancer-promoter interactions from DNA sequence, on cell lines never seen "
    "in training. Data goes to stdout or -o files; progress and logs go to stderr.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"epcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """epcli: enhancer-promoter interaction prediction."""


for _module in (candidates, prepare, train, adapt, predict, evaluate, explain, info):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``argv`` defaults to ``sys.argv[1:]``)."""
    run_guarded(app, sys.argv[1:] if argv is None else list(argv))
