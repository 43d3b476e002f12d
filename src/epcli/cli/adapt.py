"""`epcli adapt`: build a cell line's R_E prototype and thresholds from a few labeled pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from epcli.cli._common import apply_threads, log, progress_counter, warn


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("adapt")
    def adapt(
        model_dir: Annotated[
            Path, typer.Argument(help="Model directory from epcli train.", metavar="MODEL_DIR")
        ],
        support: Annotated[
            str,
            typer.Argument(
                help="Labeled pairs of the new cell: BEDPE with a 0/1 'label' column (with "
                "--genome) or an HDF5 dataset from epcli prepare.",
                metavar="SUPPORT",
            ),
        ],
        output: Annotated[
            str, typer.Option("--output", "-o", help="Prototype file to write ('-' = stdout).")
        ],
        genome: Annotated[
            Path | None, typer.Option("--genome", "-g", help="Genome FASTA (for BEDPE input).")
        ] = None,
        cell: Annotated[
            str | None,
            typer.Option(
                help="Cell line: selects it when SUPPORT holds several cells, or names the "
                "pairs when SUPPORT has no cell column."
            ),
        ] = None,
        shots: Annotated[
            int | None,
            typer.Option(help="Use a stratified, seeded subset of K labeled pairs.", metavar="K"),
        ] = None,
        target_recall: Annotated[
            float, typer.Option(help="Recall the second calibrated threshold must reach.")
        ] = 0.7,
        seed: Annotated[int, typer.Option(min=0, help="Seed of the --shots subset.")] = 0,
        device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
        threads: Annotated[
            int | None,
            typer.Option(min=1, help="CPU threads for torch and BLAS (default: all cores)."),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
        allow_incomplete: Annotated[
            bool,
            typer.Option(
                "--allow-incomplete",
                help="Accept a model directory whose training was interrupted: use the best "
                "weights it saved so far.",
            ),
        ] = False,
    ) -> None:
        """Build the R_E prototype of a new cell line and calibrate its decision thresholds."""
        from epcli.adapt import adapt as run_adapt
        from epcli.adapt import labeled_count, support_of_cell
        from epcli.core.checks import check_target_recall
        from epcli.inference.extrapolation import extrapolation_warning, prototype_distances
        from epcli.inference.predictor import Predictor
        from epcli.io.files import STDIO, check_output_path, open_text_output
        from epcli.io.source import PairsInput

        check_target_recall(target_recall)
        check_output_path(output, force, inputs=[model_dir, support, genome], what="prototype file")
        apply_threads(threads)
        pred = Predictor.load(model_dir, device=device, allow_incomplete=allow_incomplete)
        src = PairsInput(support, genome, pred.windows, needs_sequence=pred.kind != "distance")
        try:
            frame, data = src.read_all()
        finally:
            src.close()
        data, name = support_of_cell(frame, data, src.where, cell)
        total = labeled_count(data, shots)
        with progress_counter("adapt", unit="pairs", total=total) as advance:
            proto = run_adapt(
                pred,
                data,
                name,
                target_recall=target_recall,
                shots=shots,
                seed=seed,
                progress=lambda done, _n: advance(done),
            )
        with open_text_output(output, force=force) as fh:
            fh.write(proto.to_json())
        log(
            f"wrote {'stdout' if output == STDIO else output}: cell {name}, {proto.shots} "
            f"shots ({proto.n_pos} positive, "
            f"{proto.n_neg} negative); threshold best-F1 {proto.threshold_best_f1:.4g}, at "
            f"recall {target_recall:g}: {proto.threshold_at_recall:.4g}"
        )
        if min(proto.n_pos, proto.n_neg) < 5:
            warn(
                f"only {proto.n_pos} positive / {proto.n_neg} negative support pairs: a prototype "
                "from so few pairs is noisy and can rank worse than the zero-shot path; compare "
                "both on held-out pairs of this cell"
            )
        if proto.prototype is None:
            log(f"{pred.kind} model: calibration only (it has no R_E prototype)")
        for label, tfs in (("favours", proto.favoured_tfs), ("disfavours", proto.disfavoured_tfs)):
            if tfs:
                top = ", ".join(f"{t['name']} ({t['id']}) {t['weight']:+.3g}" for t in tfs[:8])
                log(f"cell {name} {label} (vs the training cells' average): {top}")
        dist = prototype_distances(proto, pred)
        if dist:
            near = ", ".join(f"{c} {d:.3g}" for c, d in sorted(dist.items(), key=lambda x: x[1]))
            log(f"distance from the training cells' prototypes: {near}")
        msg = extrapolation_warning(proto, pred)
        if msg:
            warn(msg)
