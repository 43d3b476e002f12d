"""`epcli info`: what a model directory or a prototype file holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("info")
    def info(
        path: Annotated[
            Path,
            typer.Argument(
                help="Model directory (epcli train) or prototype file (epcli adapt).",
                metavar="MODEL_DIR|PROTOTYPE",
                show_default=False,
            ),
        ],
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
        top: Annotated[int, typer.Option(min=1, help="Motifs / TFs listed in the text view.")] = 10,
    ) -> None:
        """Show a model's kind, windows, motif set, training cells, validation AUPR beside
        distance, components and their contributions, and top motifs; or a prototype's cell,
        support, thresholds and favoured TFs.

        Example: epcli info model/    (epcli info model/ --json for scripts)
        """
        from epcli.info import describe, format_info

        summary = describe(path)
        if as_json:
            typer.echo(json.dumps(summary, indent=2))
        else:
            typer.echo(format_info(summary, top=top), nl=False)
