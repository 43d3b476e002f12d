"""`epcli evaluate`: scored BEDPE -> per-cell evaluation table (AUPR, thresholds, baseline)."""

from __future__ import annotations

import importlib.util
from enum import Enum
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from epcli import schema
from epcli.bedpe import LINE_COL, read_bedpe
from epcli.cli._common import log, warn
from epcli.errors import EpcliError, UsageError
from epcli.io import STDIO, atomic_path, check_output_path, display_name, open_text_output
from epcli.metrics import evaluate_table, format_table, pr_curve

#: Suffixes --plot can write.
PLOT_FORMATS = ("png", "pdf", "svg")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


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
        # ---- options first, before any heavy work
        if not 0.0 < target_recall <= 1.0:
            raise UsageError(
                f"--target-recall must be in (0, 1], got {target_recall}",
                hint="e.g. --target-recall 0.7",
            )
        if bootstrap < 0:
            raise UsageError(f"--bootstrap must be >= 0, got {bootstrap}")
        if scored == STDIO and truth == STDIO:
            raise UsageError("SCORED and --truth cannot both read stdin")
        if output != STDIO:
            check_output_path(output, force)
        if plot is not None:
            _check_plot(plot, force)
        if train_data is not None and not Path(train_data).is_file():
            raise EpcliError("training data not found", path=train_data, hint="check the path")

        # ---- read and validate
        where = display_name(scored)
        df = read_bedpe(scored, cell=cell)
        layout = df.attrs["layout"]
        scores = _parse_scores(df, layout.columns, where)
        if truth is not None:
            labels, df_cells = _join_truth(df, truth, where)
            df = df.assign(label=labels, cell=df_cells)
        else:
            if schema.COL_LABEL not in layout.columns:
                raise EpcliError(
                    "cannot evaluate without labels; add a label column or pass --truth",
                    path=where,
                    hint="name it in a '#chrom1 ... label' header line",
                )
            if (df[schema.COL_LABEL].to_numpy() < 0).all():
                raise EpcliError(
                    "cannot evaluate without labels; add a label column or pass --truth "
                    "(every label is unknown)",
                    path=where,
                )
        labels = df[schema.COL_LABEL].to_numpy().astype(np.int64)
        cell_arr = df[schema.COL_CELL].astype(str).to_numpy(dtype=object)
        if schema.EVAL_ALL in set(cell_arr):
            raise EpcliError(
                f"a cell line is named {schema.EVAL_ALL!r}, the name of the total row",
                path=where,
                hint="rename that cell line",
            )

        if cells is not None:
            wanted = [c.strip() for c in cells.split(",") if c.strip()]
            valid = sorted(set(cell_arr))
            unknown = [c for c in wanted if c not in valid]
            if unknown or not wanted:
                raise UsageError(
                    f"unknown cell line(s) in --cells: {', '.join(unknown) or '(none given)'}",
                    hint=f"cell lines in {where}: {', '.join(valid)}",
                )
            keep = np.isin(cell_arr, wanted)
            df, scores, labels, cell_arr = df[keep], scores[keep], labels[keep], cell_arr[keep]

        from epcli.bedpe import pair_distance

        distance = pair_distance(df)
        group = cell_arr if by == By.cell else None
        if group is not None and set(group) == {schema.MISSING}:
            log(f"{where} names no cell lines; reporting the ALL row only")
            group = None
        n_known = int((labels >= 0).sum())
        log(
            f"read {len(df)} scored pairs from {where}: {n_known} labeled "
            f"({int((labels == 1).sum())} positive)"
            + ("" if group is None else f", {len(set(group))} cell line(s)")
        )

        kw = dict(bootstrap=bootstrap, target_recall=target_recall, seed=seed)
        names = None
        if group is not None:  # a '.' (no cell) group only when it holds labeled pairs
            names = sorted(set(group[labels >= 0]) | (set(group) - {schema.MISSING}))
        table = evaluate_table(scores, labels, distance, group, cell_names=names, **kw)
        messages = list(table.attrs.get("warnings", []))

        if train_data is not None:
            extra, leak_msgs = _leakage(train_data, df, scores, labels, distance, group, kw)
            table = pd.concat([table, extra], ignore_index=True)
            messages += leak_msgs
        for m in messages:
            warn(m)

        # ---- write (everything is computed; nothing was written before this point)
        if plot is not None:
            _plot(plot, scores, labels, distance, group, table)
            log(f"wrote precision-recall curves to {plot}")
        text = format_table(table)
        with open_text_output(output, force=force) as fh:
            fh.write(text)
        if output != STDIO:
            for r in table.itertuples(index=False):
                log(_summary_line(r))
            log(f"wrote {len(table)} rows to {output}")


def _summary_line(r) -> str:
    def f(v: float) -> str:
        return "NA" if pd.isna(v) else f"{v:.3f}"

    return (
        f"{r.cell}: n={r.n} pos={r.n_pos} prevalence={f(r.prevalence)} AUPR={f(r.aupr)} "
        f"[{f(r.aupr_lo)}, {f(r.aupr_hi)}] AUROC={f(r.auroc)} distance AUPR={f(r.distance_aupr)}"
    )


def _check_plot(plot: Path, force: bool) -> None:
    suffix = plot.suffix.lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise UsageError(
            f"--plot must end in .{', .'.join(PLOT_FORMATS)}, got {plot.name!r}",
        )
    if importlib.util.find_spec("matplotlib") is None:
        raise EpcliError(
            "--plot needs matplotlib, which is not installed",
            hint="pip install 'epcli[plot]'",
        )
    check_output_path(plot, force)


def _parse_scores(df: pd.DataFrame, columns: list[str], where: str) -> np.ndarray:
    """Column 8 as finite floats, shape (n,); the first bad value raises with file:line."""
    if "score" not in columns:
        raise EpcliError(
            "no score column (column 8 of a BEDPE)",
            path=where,
            hint="score pairs with 'epcli predict', or give 10 columns / a header naming 'score'",
        )
    raw = df["score"]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        text = str(raw.iloc[i])
        what = "not a number" if np.isnan(values[i]) else "not a finite number"
        raise EpcliError(
            f"score is {what}: {text!r}",
            path=where,
            line=int(df[LINE_COL].iloc[i]),
            hint="column 8 (score) must hold a finite number for every pair",
        )
    return values


def _has_cells(values: pd.Series) -> bool:
    return bool((values.astype(str) != schema.MISSING).any())


def _join_truth(df: pd.DataFrame, truth_path: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels (and cells) for the rows of ``df`` from a labeled BEDPE.

    Returns
    -------
    labels : np.ndarray, shape (n,), int8
        -1 where the truth has no row for the pair.
    cells : np.ndarray, shape (n,), object
        ``df``'s cells, or the truth's where ``df`` names none.
    """
    tname = display_name(truth_path)
    truth = read_bedpe(truth_path)
    if schema.COL_LABEL not in truth.attrs["layout"].columns:
        raise EpcliError(
            "--truth file has no label column",
            path=tname,
            hint="name it in a '#chrom1 ... label' header line",
        )
    truth = truth[truth[schema.COL_LABEL] >= 0]
    if truth.empty:
        raise EpcliError("--truth file has no known labels (all are unknown)", path=tname)
    scored_cells = _has_cells(df[schema.COL_CELL])
    truth_cells = _has_cells(truth[schema.COL_CELL])
    by_cell = scored_cells and truth_cells
    key = list(schema.BEDPE_COORDS) + ([schema.COL_CELL] if by_cell else [])
    t = truth[key + [schema.COL_LABEL, LINE_COL]].copy()
    if not by_cell:
        t["_truth_cell"] = truth[schema.COL_CELL].astype(str)
    first = t.groupby(key, sort=False)[schema.COL_LABEL].transform("first")
    conflict = (t[schema.COL_LABEL] != first).to_numpy()
    if conflict.any():
        line = int(t[LINE_COL].iloc[int(np.argmax(conflict))])
        raise EpcliError(
            "this pair appears again with a different label",
            path=tname,
            line=line,
            hint="each pair (and cell) may carry one label",
        )
    if not by_cell:
        t["_n_cells"] = t.groupby(key, sort=False)["_truth_cell"].transform("nunique")
    t = t.drop_duplicates(key)
    merged = df[key].merge(
        t.drop(columns=[LINE_COL]), on=key, how="left", validate="many_to_one", sort=False
    )
    matched = merged[schema.COL_LABEL].notna().to_numpy()
    n_matched = int(matched.sum())
    if n_matched == 0:
        raise EpcliError(
            f"--truth matched no rows of {where}",
            path=tname,
            hint="pairs are joined on chrom1 start1 end1 chrom2 start2 end2"
            + (" and cell" if by_cell else "")
            + "; check coordinates, chromosome names and cell names",
        )
    if n_matched < len(df):
        warn(f"{len(df) - n_matched} of {len(df)} scored pairs have no row in {tname}; left out")
    labels = merged[schema.COL_LABEL].fillna(-1).to_numpy().astype(np.int8)
    cells = df[schema.COL_CELL].astype(str).to_numpy(dtype=object)
    if truth_cells and not scored_cells:
        ambiguous = matched & (merged["_n_cells"].fillna(1).to_numpy() > 1)
        if ambiguous.any():
            i = int(np.argmax(ambiguous))
            raise EpcliError(
                "this pair matches rows of several cell lines in the --truth file",
                path=where,
                line=int(df[LINE_COL].iloc[i]),
                hint="add a cell column to SCORED or pass --cell NAME",
            )
        cells = np.where(matched, merged["_truth_cell"].astype(str).to_numpy(), cells)
    log(f"labels from {tname}: {n_matched} of {len(df)} scored pairs matched")
    return labels, cells.astype(object)


def _leakage(
    train_data: str,
    df: pd.DataFrame,
    scores: np.ndarray,
    labels: np.ndarray,
    distance: np.ndarray,
    group: np.ndarray | None,
    kw: dict,
) -> tuple[pd.DataFrame, list[str]]:
    """Audit anchors against the training data; leak-free rows and their warnings."""
    from epcli import leakage

    with open(train_data, "rb") as fh:
        is_hdf5 = fh.read(8) == _HDF5_MAGIC
    if is_hdf5:
        from epcli.dataset import read_anchor_table

        anchors = read_anchor_table(train_data)
    else:
        anchors = leakage.anchors_from_bedpe(read_bedpe(train_data))
    known = labels >= 0
    sub = df[known]
    flags = leakage.audit(sub, anchors)
    messages = list(flags.attrs.get("warnings", []))
    sub_group = None if group is None else group[known]
    shares = leakage.summarize(flags, sub_group)
    for r in shares.itertuples(index=False):
        log(
            f"leakage vs {train_data}: {r.cell}: of {r.n} labeled pairs, enhancer seen in "
            f"training {_pct(r.enh_seen)}, promoter seen {_pct(r.pro_seen)}, both "
            f"{_pct(r.both)}, leak-free {_pct(r.leak_free)}"
        )
    free = leakage.leak_free_table(
        scores[known], labels[known], distance[known], sub_group, flags, **kw
    )
    messages += free.attrs.get("warnings", [])
    return free, messages


def _pct(v: float) -> str:
    return "NA" if pd.isna(v) else f"{100 * v:.1f}%"


def _plot(
    path: Path,
    scores: np.ndarray,
    labels: np.ndarray,
    distance: np.ndarray,
    group: np.ndarray | None,
    table: pd.DataFrame,
) -> None:
    """Precision-recall curves per cell; the distance baseline dashed in the same colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    known = labels >= 0
    names = [] if group is None else sorted(set(group[known]))
    curves: list[tuple[str, np.ndarray]] = [(n, known & (group == n)) for n in names]
    if len(curves) != 1:
        curves.append((schema.EVAL_ALL, known))
    rows = table.set_index("cell")
    fig, ax = plt.subplots(figsize=(6, 5))
    for i, (name, m) in enumerate(curves):
        y = labels[m]
        if y.size == 0 or y.min() == y.max():
            continue
        colour = "black" if name == schema.EVAL_ALL else f"C{i % 10}"
        r, p = pr_curve(scores[m], y)
        row = rows.loc[name]
        ax.step(r, p, where="post", color=colour, lw=1.5, label=f"{name} (AUPR {row.aupr:.3f})")
        r, p = pr_curve(-distance[m].astype(np.float64), y)
        ax.step(
            r,
            p,
            where="post",
            color=colour,
            lw=1,
            ls="--",
            label=f"{name} distance (AUPR {row.distance_aupr:.3f})",
        )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall per cell (dashed: distance baseline)")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fmt = path.suffix.lower().lstrip(".")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120)
    plt.close(fig)
