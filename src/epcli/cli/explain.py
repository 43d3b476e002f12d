"""`epcli explain`: per pair, the TF motifs (and motif pairs) that drive its score."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from epcli.cli._common import log, progress_counter
from epcli.io.files import STDIO, open_text_output
from epcli.io.source import PairsInput


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("explain")
    def explain(
        pairs: Annotated[
            str,
            typer.Argument(
                help="Pairs to explain: BEDPE (file, .gz or '-') with --genome, or an HDF5 "
                "dataset from epcli prepare.",
                metavar="PAIRS",
                show_default=False,
            ),
        ],
        model: Annotated[
            str | None,
            typer.Option(
                "--model", "-m", help="Motif-grounded prism model directory (epcli train)."
            ),
        ] = None,
        genome: Annotated[
            Path | None, typer.Option("--genome", "-g", help="Genome FASTA (for BEDPE input).")
        ] = None,
        prototype: Annotated[
            Path | None,
            typer.Option("--prototype", "-p", help="Cell prototype (epcli adapt) for R_E."),
        ] = None,
        top: Annotated[
            int, typer.Option("--top", "-k", min=1, help="Contributions listed per pair.")
        ] = 5,
        output: Annotated[
            str, typer.Option("--output", "-o", help="Output table ('-' = stdout).")
        ] = STDIO,
        cell: Annotated[
            str | None, typer.Option(help="Cell line of every pair (sets the 'cell' column).")
        ] = None,
        chunk_size: Annotated[
            int, typer.Option(min=1, help="Pairs read per chunk (bounds memory).")
        ] = 10_000,
        device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
        force: Annotated[
            bool, typer.Option("--force", help="Replace an existing -o file.")
        ] = False,
    ) -> None:
        """Explain scores: per pair, the top K parts of U_I (enhancer motif, promoter motif,
        E x P motif pair or distance) with motif ID and TF name, as a TSV table.

        Example: epcli explain loops.bedpe --genome hg38.fa --model model/ --top 5 > why.tsv
        """
        from epcli.core.errors import UsageError
        from epcli.explain import EXPLAIN_COLUMNS, check_explainable, explain_frame
        from epcli.inference.device import check_device_name
        from epcli.inference.predictor import Predictor, load_prototype
        from epcli.io.bedpe import format_header, write_bedpe_rows
        from epcli.io.modeldir import resolve_model

        check_device_name(device)
        model_dir, source = resolve_model(model)
        pred = Predictor.load(model_dir, device=device)
        if not pred.is_torch:
            raise UsageError(
                f"explain needs a motif-grounded prism model; {model_dir} is a {pred.kind} model",
                hint="train one with epcli train --model prism",
            )
        check_explainable(pred.model)
        log(f"model: {model_dir} ({source})")
        proto = None
        if prototype is not None:
            proto = load_prototype(prototype, pred).array()
        src = PairsInput(pairs, genome, pred.windows, needs_sequence=True, cell=cell)
        n = 0
        try:
            with (
                open_text_output(output, force=force) as fh,
                progress_counter("explain", unit="pairs") as advance,
            ):
                fh.write(format_header(EXPLAIN_COLUMNS))
                for frame, data in src.chunks(chunk_size=chunk_size):
                    table = explain_frame(pred.model, frame, data, top, proto)
                    write_bedpe_rows(fh, table, EXPLAIN_COLUMNS, header=False)
                    n += data.n_pairs
                    advance(n)
        finally:
            src.close()
        where = "stdout" if output == STDIO else output
        log(f"explained {n} pairs (top {top} parts each) -> {where}")
