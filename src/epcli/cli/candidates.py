"""`epcli candidates`: every cis enhancer-promoter pair within a distance, as BEDPE."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from epcli.candidates import DEFAULT_DOWNSTREAM, DEFAULT_MAX_DISTANCE, DEFAULT_UPSTREAM
from epcli.cli._common import log, progress_counter, warn
from epcli.io.files import STDIO, check_output_path, open_text_output


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("candidates")
    def candidates(
        enhancers: Annotated[
            str,
            typer.Argument(
                help="Enhancers BED (ENCODE cCREs, ATAC peaks): chrom start end, then optional "
                "name, score, strand; .gz is read transparently; '-' reads stdin.",
                metavar="ENHANCERS",
                show_default=False,
            ),
        ],
        promoters: Annotated[
            str,
            typer.Argument(
                help="Promoters BED: promoter windows, or with --tss TSSs/genes with the "
                "strand in column 6; .gz or '-' as for ENHANCERS.",
                metavar="PROMOTERS",
                show_default=False,
            ),
        ],
        max_distance: Annotated[
            int,
            typer.Option(
                min=0,
                help="Largest |promoter midpoint - enhancer midpoint| written (bp, inclusive).",
            ),
        ] = DEFAULT_MAX_DISTANCE,
        min_distance: Annotated[
            int, typer.Option(min=0, help="Smallest distance written (bp, inclusive).")
        ] = 0,
        tss: Annotated[
            bool,
            typer.Option(
                "--tss",
                help="PROMOTERS are TSSs or genes with a strand: place a window of --upstream "
                "bp upstream and --downstream bp downstream of each TSS (start on +, end-1 "
                "on -), as BENGI does.",
            ),
        ] = False,
        upstream: Annotated[
            int | None,
            typer.Option(min=0, help=f"With --tss: bp upstream (default {DEFAULT_UPSTREAM})."),
        ] = None,
        downstream: Annotated[
            int | None,
            typer.Option(
                min=1,
                help=f"With --tss: bp downstream, TSS included (default {DEFAULT_DOWNSTREAM}).",
            ),
        ] = None,
        genome: Annotated[
            Path | None,
            typer.Option(
                "--genome", "-g", help="Genome FASTA: check chromosome names and ends against it."
            ),
        ] = None,
        chrom_sizes: Annotated[
            Path | None,
            typer.Option(
                help="Chromosome sizes file (chrom<TAB>length, or a .fai) instead of --genome."
            ),
        ] = None,
        output: Annotated[
            str, typer.Option("--output", "-o", help="Output BEDPE ('-' = stdout; .gz gzips).")
        ] = STDIO,
        force: Annotated[
            bool, typer.Option("--force", help="Replace an existing -o file.")
        ] = False,
    ) -> None:
        """Write every cis enhancer-promoter pair within --max-distance as BEDPE, enhancer
        first, sorted by chromosome and position; ready for epcli predict.

        Distance is |promoter midpoint - enhancer midpoint|, midpoint = (start + end) // 2.
        The name column is ENHANCER_NAME|PROMOTER_NAME; a last column gives the distance.

        Example: epcli candidates cCREs.bed genes.bed --tss --max-distance 1000000 |
        epcli predict - --genome hg38.fa --model model/ > scored.bedpe
        """
        from epcli.candidates import Candidates
        from epcli.core.errors import UsageError

        if genome is not None and chrom_sizes is not None:
            raise UsageError("give --genome or --chrom-sizes, not both")
        if not tss and (upstream is not None or downstream is not None):
            raise UsageError(
                "--upstream/--downstream place windows around TSSs and need --tss",
                hint="add --tss when PROMOTERS holds TSSs or genes with a strand",
            )
        check_output_path(output, force, inputs=[enhancers, promoters])
        lengths, genome_name = None, "the genome"
        if genome is not None:
            from epcli.io.genome import Genome

            with Genome(genome) as g:
                lengths, genome_name = dict(g.lengths), g.name
        elif chrom_sizes is not None:
            from epcli.io.genome import read_chrom_sizes

            lengths, genome_name = read_chrom_sizes(chrom_sizes), chrom_sizes.name
        windows = (
            (
                DEFAULT_UPSTREAM if upstream is None else upstream,
                DEFAULT_DOWNSTREAM if downstream is None else downstream,
            )
            if tss
            else None
        )
        with Candidates(
            enhancers,
            promoters,
            max_distance=max_distance,
            min_distance=min_distance,
            tss=windows,
            lengths=lengths,
            genome_name=genome_name,
        ) as cand:
            s = cand.stats
            log(
                f"{s.n_enhancers:,} enhancers on {len(s.enhancer_chroms)} chromosome(s), "
                f"{s.n_promoters:,} promoters on {len(s.promoter_chroms)}; "
                f"{s.n_pairs:,} pairs within {min_distance:,}-{max_distance:,} bp"
            )
            if windows is not None:
                log(
                    f"promoter windows: {windows[0]} bp upstream, {windows[1]} bp downstream "
                    "of the TSS"
                )
            if s.n_clipped:
                warn(f"{s.n_clipped} promoter window(s) clipped at a chromosome end")
            if not s.grouped:
                warn(
                    "the enhancers are not grouped by chromosome, so all of them are held in "
                    "memory; sort them (sort -k1,1 -k2,2n) to read one chromosome at a time"
                )
            if s.n_pairs == 0:
                warn("no pair lies within the distance range; writing the header only")
            with (
                open_text_output(output, force=force) as fh,
                progress_counter("candidates", unit="pairs", total=s.n_pairs) as advance,
            ):
                cand.write(fh, progress=advance)
        where = "stdout" if output == STDIO else output
        log(f"wrote {s.n_pairs:,} pairs -> {where}")
