"""`epcli evaluate`: scored BEDPE -> per-cell evaluation table (AUPR, thresholds, baseline).

A thin CLI: options are parsed and checked here; reading, the table, the leakage audit and the
plot live in :mod:`epcli.evaluate.evaluation`.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from epcli.cli._common import log, warn
from epcli.core.errors import EpcliError, UsageError
from epcli.evaluate.evaluation import (
    PLOT_FORMATS,
    check_plot_backend,
    load_scored,
    plot_pr_curves,
    plottable,
    run_evaluation,
)
from epcli.evaluate.metrics import format_table
from epcli.io.files import STDIO, check_distinct_outputs, check_output_path, open_text_output


class By(str, Enum):
    """How rows are grouped."""

    cell = "cell"
    none = "none"


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("evaluate")
    def evaluate(
        scored: Annotated[
            str,
            typer.Argument(
                help="Scored BEDPE (e.g. from 'epcli predict'): column 8 'score', and a "
                "'label' column unless --truth is given; .gz is read transparently; '-' reads "
                "stdin.",
                show_default=False,
                metavar="SCORED",
            ),
        ],
        output: Annotated[
            str, typer.Option("--output", "-o", help="Table to write (TSV); '-' is stdout.")
        ] = STDIO,
        by: Annotated[
            By, typer.Option(help="'cell': one row per cell line and ALL; 'none': ALL only.")
        ] = By.cell,
        cells: Annotated[
            str | None,
            typer.Option(help="Evaluate only these cell lines (comma-separated)."),
        ] = None,
        cell: Annotated[
            str | None,
            typer.Option(help="Cell line of every pair in SCORED (overrides a 'cell' column)."),
        ] = None,
        bootstrap: Annotated[
            int, typer.Option(help="Bootstrap resamples for the AUPR interval (0: none).")
        ] = 1000,
        target_recall: Annotated[
            float, typer.Option(help="Recall in (0, 1] for threshold_at_recall.")
        ] = 0.7,
        seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
        plot: Annotated[
            Path | None,
            typer.Option(help="Write precision-recall curves per cell (png, pdf or svg)."),
        ] = None,
        truth: Annotated[
            str | None,
            typer.Option(
                help="Labeled BEDPE joined to SCORED on the six coordinates (and the cell "
                "when both files name cells); its labels replace SCORED's."
            ),
        ] = None,
        train_data: Annotated[
            str | None,
            typer.Option(
                help="Training data (HDF5 from 'epcli prepare', or BEDPE): audit anchor "
                "overlap and add '<cell>|leak-free' rows (pairs with neither anchor seen)."
            ),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Replace existing outputs.")] = False,
    ) -> None:
        """Evaluate scores against labels, per cell line: n, positives, prevalence, AUPR with a
        bootstrap 95% interval, AUROC, the best-F1 threshold, the threshold at a target recall,
        and the distance-only baseline's AUPR on the same rows.

        The table goes to stdout (or -o); logs and warnings go to stderr.
        """
        from epcli.core.checks import check_target_recall

        # ---- options first, before any heavy work
        check_target_recall(target_recall)
        if bootstrap < 0:
            raise UsageError(f"--bootstrap must be >= 0, got {bootstrap}")
        if scored == STDIO and truth == STDIO:
            raise UsageError("SCORED and --truth cannot both read stdin")
        inputs = [scored, truth, train_data]
        check_output_path(output, force, inputs=inputs, what="evaluation table")
        if plot is not None:
            _check_plot(plot, force, inputs)
        check_distinct_outputs([output, plot])
        if train_data is not None and not Path(train_data).is_file():
            raise EpcliError("training data not found", path=train_data, hint="check the path")

        # ---- read and validate
        pairs = load_scored(scored, cell=cell, truth=truth)
        for m in pairs.warnings:
            warn(m)
        if pairs.truth_source is not None:
            log(
                f"labels from {pairs.truth_source}: {pairs.n_truth_matched} of "
                f"{pairs.n_pairs} scored pairs matched"
            )
        if cells is not None:
            pairs = pairs.select_cells([c.strip() for c in cells.split(",") if c.strip()])
        group = pairs.groups(by.value)
        if by == By.cell and group is None:
            log(f"{pairs.source} names no cell lines; reporting the ALL row only")
        log(
            f"read {pairs.n_pairs} scored pairs from {pairs.source}: {pairs.n_labeled} labeled "
            f"({pairs.n_positive} positive)"
            + ("" if group is None else f", {len(set(group))} cell line(s)")
        )

        # ---- compute
        result = run_evaluation(
            pairs,
            by=by.value,
            bootstrap=bootstrap,
            target_recall=target_recall,
            seed=seed,
            train_data=train_data,
        )
        if result.leakage is not None:
            for r in result.leakage.itertuples(index=False):
                log(
                    f"leakage vs {train_data}: {r.cell}: of {r.n} labeled pairs, enhancer seen "
                    f"in training {_pct(r.enh_seen)}, promoter seen {_pct(r.pro_seen)}, both "
                    f"{_pct(r.both)}, leak-free {_pct(r.leak_free)}"
                )
        for m in result.warnings:
            warn(m)

        # ---- write (everything is computed; nothing was written before this point)
        table = result.table
        if plot is not None and not plottable(pairs.labels, result.groups):
            raise EpcliError(
                "cannot draw precision-recall curves: no cell has both positive and negative "
                "labels",
                path=pairs.source,
                hint="drop --plot, or add labeled pairs of the missing class; nothing was written",
            )
        if plot is not None:
            plot_pr_curves(plot, pairs.scores, pairs.labels, pairs.distance, result.groups, table)
            log(f"wrote precision-recall curves to {plot}")
        text = format_table(table)
        with open_text_output(output, force=force) as fh:
            fh.write(text)
        if output != STDIO:
            for r in table.itertuples(index=False):
                log(_summary_line(r))
            log(f"wrote {len(table)} rows to {output}")


def _summary_line(r) -> str:
    """One table row as a log line."""

    def f(v: float) -> str:
        return "NA" if pd.isna(v) else f"{v:.3f}"

    return (
        f"{r.cell}: n={r.n} pos={r.n_pos} prevalence={f(r.prevalence)} AUPR={f(r.aupr)} "
        f"[{f(r.aupr_lo)}, {f(r.aupr_hi)}] AUROC={f(r.auroc)} distance AUPR={f(r.distance_aupr)}"
    )


def _pct(v: float) -> str:
    return "NA" if pd.isna(v) else f"{100 * v:.1f}%"


def _check_plot(plot: Path, force: bool, inputs: list[str | None]) -> None:
    """--plot: a known suffix, matplotlib installed, and a writable path."""
    suffix = plot.suffix.lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise UsageError(
            f"--plot must end in .{', .'.join(PLOT_FORMATS)}, got {plot.name!r}",
        )
    check_plot_backend()
    check_output_path(
        plot, force, inputs=inputs, what="--plot figure", no_stdout="is an image, not text"
    )
