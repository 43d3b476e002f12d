"""`epcli prepare`: BEDPE + genome FASTA -> HDF5 dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from epcli.cli._common import apply_threads, log, progress_counter, warn
from epcli.io.genome import DEFAULT_ENHANCER_WINDOW, DEFAULT_PROMOTER_WINDOW
from epcli.prepare import prepare_hdf5


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("prepare")
    def prepare(
        pairs: Annotated[
            str,
            typer.Argument(
                help="BEDPE of enhancer-promoter pairs (anchor 1 = enhancer, anchor 2 = "
                "promoter); .gz is read transparently; '-' reads stdin.",
                show_default=False,
                metavar="PAIRS",
            ),
        ],
        genome: Annotated[
            Path,
            typer.Option("--genome", "-g", help="Genome FASTA (indexed with .fai, or indexable)."),
        ],
        output: Annotated[Path, typer.Option("--output", "-o", help="HDF5 file to write.")],
        cell: Annotated[
            str | None,
            typer.Option(help="Cell line of every pair (overrides a 'cell' column)."),
        ] = None,
        enhancer_window: Annotated[
            int, typer.Option(help="Enhancer window (bp), centred on the anchor midpoint.")
        ] = DEFAULT_ENHANCER_WINDOW,
        promoter_window: Annotated[
            int, typer.Option(help="Promoter window (bp), centred on the anchor midpoint.")
        ] = DEFAULT_PROMOTER_WINDOW,
        chunk_size: Annotated[
            int, typer.Option(min=1, help="Pairs read per chunk (bounds memory).")
        ] = 50_000,
        threads: Annotated[
            int | None,
            typer.Option(
                min=1, help="CPU threads for BLAS/OpenMP pools (prepare itself is one thread)."
            ),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Replace an existing output.")] = False,
    ) -> None:
        """Extract fixed-length sequence windows for each pair's anchors into an HDF5 dataset.

        Each unique enhancer and promoter window is stored once; pairs index into them.
        """
        from epcli.io.source import count_bedpe_rows

        apply_threads(threads)
        total = None if pairs == "-" else count_bedpe_rows(pairs)
        with progress_counter("prepare", unit="pairs", total=total) as advance:
            s = prepare_hdf5(
                pairs,
                genome,
                output,
                cell=cell,
                enhancer_window=enhancer_window,
                promoter_window=promoter_window,
                chunk_size=chunk_size,
                force=force,
                progress=advance,
            )
        if s.n_padded_windows:
            warn(f"{s.n_padded_windows} window(s) ran off a contig end and were padded with N")
        cells = ", ".join(f"{c} ({n})" for c, n in sorted(s.cells.items()))
        log(
            f"wrote {output}: {s.n_pairs} pairs, {s.n_enhancers} unique enhancers, "
            f"{s.n_promoters} unique promoters; labels: {s.labels[1]} positive, "
            f"{s.labels[0]} negative, {s.labels[-1]} unknown; cells: {cells}"
        )
