"""`epcli prepare` (being built)."""

from __future__ import annotations

import typer

from epcli.cli._common import not_built


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command(
        "prepare", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
    )
    def prepare(ctx: typer.Context) -> None:
        """Not built yet."""
        not_built("prepare")
