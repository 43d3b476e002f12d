"""`epcli predict`: score pairs and write BEDPE with probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from epcli.cli._common import apply_threads, log, progress_counter, warn
from epcli.io.files import STDIO, check_output_path, open_text_output
from epcli.io.source import PairsInput, parse_shard


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("predict")
    def predict(
        pairs: Annotated[
            str,
            typer.Argument(
                help="Pairs to score: BEDPE (file, .gz or '-') with --genome, or an HDF5 "
                "dataset from epcli prepare.",
                metavar="PAIRS",
                show_default=False,
            ),
        ],
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                "-m",
                help="Model directory (epcli train). Default: $EPCLI_MODEL, else the bundled "
                "distance prior.",
            ),
        ] = None,
        genome: Annotated[
            Path | None, typer.Option("--genome", "-g", help="Genome FASTA (for BEDPE input).")
        ] = None,
        prototype: Annotated[
            Path | None,
            typer.Option(
                "--prototype",
                "-p",
                help="Cell prototype from epcli adapt; without it, the zero-shot path.",
            ),
        ] = None,
        output: Annotated[
            str, typer.Option("--output", "-o", help="Output BEDPE ('-' = stdout).")
        ] = STDIO,
        cell: Annotated[
            str | None, typer.Option(help="Cell line of every pair (sets the 'cell' column).")
        ] = None,
        batch_size: Annotated[
            int, typer.Option(min=1, help="Anchors / pairs per device batch.")
        ] = 256,
        chunk_size: Annotated[
            int, typer.Option(min=1, help="Pairs read per chunk (bounds memory).")
        ] = 100_000,
        device: Annotated[
            str, typer.Option(help="auto (CUDA when available), cpu, cuda or cuda:N.")
        ] = "auto",
        threads: Annotated[
            int | None,
            typer.Option(min=1, help="CPU threads for torch and BLAS (default: all cores)."),
        ] = None,
        cache_mb: Annotated[
            int,
            typer.Option(
                min=0,
                help="Memory budget (MiB) of the anchor cache that spans chunks: a window reused "
                "across chunks is encoded once (LRU beyond the budget; 0 = per chunk only).",
            ),
        ] = 512,
        shard: Annotated[
            str | None,
            typer.Option(
                help="I/N: score only the I-th (1-based) of N contiguous parts of the input; "
                "the N outputs concatenated in order equal the single-job output. 'auto' takes "
                "I and N from torchrun or a SLURM array; '{shard}' in -o becomes I.",
            ),
        ] = None,
        force: Annotated[
            bool, typer.Option("--force", help="Replace an existing -o file.")
        ] = False,
        allow_incomplete: Annotated[
            bool,
            typer.Option(
                "--allow-incomplete",
                help="Accept a model directory whose training was interrupted: use the best "
                "weights it saved so far.",
            ),
        ] = False,
    ) -> None:
        """Score enhancer-promoter pairs; BEDPE out with column 8 = probability of interaction.

        Example: epcli predict loops.bedpe --genome hg38.fa > scored.bedpe
        """
        from epcli.inference.device import check_device_name
        from epcli.inference.predictor import Predictor, load_prototype
        from epcli.io.modeldir import resolve_model
        from epcli.predict import score_to_bedpe

        shard_ij = parse_shard(shard)
        if "{shard}" in output:
            if shard_ij is None:
                from epcli.core.errors import UsageError

                raise UsageError("-o contains {shard} but no --shard was given")
            output = output.replace("{shard}", str(shard_ij[0]))
        check_device_name(device)
        apply_threads(threads)
        model_dir, source = resolve_model(model)
        check_output_path(
            output,
            force,
            inputs=[pairs, genome, prototype, model_dir],
            what="scored BEDPE",
        )
        log(f"model: {model_dir} ({source})")
        pred = Predictor.load(model_dir, device=device, allow_incomplete=allow_incomplete)
        if pred.is_torch:
            log(f"device: {pred.device}")
        if pred.is_torch and cache_mb > 0:
            from epcli.inference.cache import WindowCache

            pred.window_cache = WindowCache(cache_mb * 1024**2)
        proto = None
        if prototype is not None:
            proto = load_prototype(prototype, pred)
            log(f"prototype: cell {proto.cell}, {proto.shots} shots ({prototype})")
        elif pred.has_prototype:
            log("no --prototype: zero-shot scores (population prototype)")
        src = PairsInput(
            pairs, genome, pred.windows, needs_sequence=pred.kind != "distance", cell=cell
        )
        try:
            total = src.count(shard_ij)
            with (
                open_text_output(output, force=force) as fh,
                progress_counter("predict", unit="pairs", total=total) as advance,
            ):
                stats = score_to_bedpe(
                    pred,
                    src,
                    fh,
                    prototype=proto,
                    chunk_size=chunk_size,
                    batch_size=batch_size,
                    shard=shard_ij,
                    header=shard_ij is None or shard_ij[0] == 1,
                    progress=advance,
                )
        finally:
            src.close()
        _report(stats, src, output, pred.window_cache, proto is not None)


def _report(stats, src, output: str, cache, with_prototype: bool) -> None:
    """What predict tells on stderr after scoring: replaced columns, padded windows, the
    score range, the anchor cache and the collapse check."""
    from epcli.io.files import STDIO

    if stats.replaced:
        warn(
            f"{src.where} was scored before: its column(s) {', '.join(stats.replaced)} "
            "were replaced by the new scores"
        )
    if getattr(src, "n_padded", 0):
        warn(f"{src.n_padded} window(s) ran off a contig end and were padded with N")
    where = "stdout" if output == STDIO else output
    called = f", {stats.n_called} called interacting" if with_prototype else ""
    log(f"scored {stats.n} pairs -> {where}; score range {stats.lo:.4g}..{stats.hi:.4g}{called}")
    if cache is not None:
        c = cache.stats
        log(
            f"anchor cache: {c.computed:,} windows encoded, {c.hits:,} reused "
            f"({100 * c.hit_rate:.1f}% of lookups), {cache.nbytes / 1024**2:,.0f} MiB held"
        )
    if stats.collapsed():
        warn(
            f"scores are all about equal (std {stats.std:.2g}): the model looks collapsed; "
            "do not read these scores as a ranking"
        )
