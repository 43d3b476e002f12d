"""Real labeled pairs -> epcli BEDPE for one TransEPI strict fold, with a leakage report.

Reads the BENGI (TransEPI repackaging) or TargetFinder tables shipped in
``example_data/pairs/`` (hg19), and writes into ``--out``:

``train.bedpe``
    Training cells (default GM12878 + HeLa) on chromosomes OUTSIDE the test fold.
``test.bedpe``
    Every other cell on the test fold's chromosomes.
``test.<cell>.bedpe``, ``train.<cell>.bedpe``
    The same, one file per cell (with ``--per-cell``).
``support.<cell>.bedpe``
    With ``--shots K``: K labeled pairs of each test cell drawn from chromosomes OUTSIDE
    the test fold (so ``epcli adapt`` never sees a test chromosome), stratified so both
    classes are present.

and prints, per cell, n / positives / prevalence of both sets, then the leakage figures of
a cell-line-only split (train cells on all chromosomes, same test set) next to the strict
split: share of test pairs identical to a training pair (and with the same label), and share
of distinct test promoters / enhancers that occur in training (exact coordinates) or overlap
a training anchor of the same kind (>= 1 bp).

Example::

    python benchmarks/real_pairs.py --source bengi --assay HiC --fold 0 -o bench_out/fold0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from epcli.core.errors import EpcliError
from epcli_bench.convert import (
    FOLDS,
    STRICT_TRAIN_CELLS,
    cell_only_split,
    cell_summary,
    fold_name,
    leakage_figures,
    read_source,
    strict_split,
    write_bedpe,
)

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIRS = {"bengi": "transepi_bengi", "targetfinder": "targetfinder"}


def support_sets(
    df: pd.DataFrame, test_fold: str, cells: list[str], shots: int, seed: int
) -> dict[str, pd.DataFrame]:
    """K labeled pairs per cell from chromosomes outside ``test_fold``, both classes present.

    Parameters
    ----------
    df : pandas.DataFrame
        All pairs (with ``cell``, ``chrom1``, ``label``).
    test_fold : str
        ``fold0`` .. ``fold4``.
    cells : list of str
        Cells to draw for.
    shots : int
        Pairs per cell (at least 2).
    seed : int
        Seed of the draw (per cell: ``default_rng([seed, index of the cell])``).

    Returns
    -------
    dict of str to pandas.DataFrame
        Rows in their original order; positives = max(1, round(shots * prevalence)).
    """
    out: dict[str, pd.DataFrame] = {}
    outside = ~df["chrom1"].isin(FOLDS[test_fold])
    for i, cell in enumerate(cells):
        pool = df[outside & (df["cell"] == cell)]
        pos = np.flatnonzero(pool["label"].to_numpy() == 1)
        neg = np.flatnonzero(pool["label"].to_numpy() == 0)
        if pos.size == 0 or neg.size == 0:
            continue
        rng = np.random.default_rng([seed, i])
        n_pos = min(pos.size, max(1, round(shots * pos.size / len(pool))))
        n_neg = min(neg.size, max(1, shots - n_pos))
        pick = np.sort(
            np.concatenate(
                [rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)]
            )
        )
        out[cell] = pool.iloc[pick]
    return out


def _print_summary(title: str, df: pd.DataFrame) -> None:
    s = cell_summary(df)
    print(f"{title}: {len(df)} pairs")
    print(f"  {'cell':<10} {'n':>8} {'pos':>7} {'prevalence':>10}")
    for r in s.itertuples(index=False):
        print(f"  {r.cell:<10} {r.n:>8} {r.n_pos:>7} {r.prevalence:>10.4f}")


def _print_leakage(rows: dict[str, dict[str, float]]) -> None:
    keys = (
        ("pair_identical", "pairs_identical"),
        ("pair_identical_same_label", "same_label"),
        ("promoter_seen", "prom_seen"),
        ("enhancer_seen", "enh_seen"),
        ("promoter_overlap", "prom_overlap"),
        ("enhancer_overlap", "enh_overlap"),
    )
    print("leakage, share of the test set already in training (seen = exact coordinates):")
    print(f"  {'split':<10} " + " ".join(f"{h:>15}" for _, h in keys))
    for name, fig in rows.items():
        print(f"  {name:<10} " + " ".join(f"{fig[k]:>15.4f}" for k, _ in keys))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", choices=sorted(SOURCE_DIRS), default="bengi")
    ap.add_argument(
        "--assay",
        default="HiC",
        help="BENGI assay: HiC, CTCF-ChIAPET, RNAPII-ChIAPET or all (default HiC)",
    )
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder of the tables (default: example_data/pairs/<source> of this repo)",
    )
    ap.add_argument("--fold", default="0", help="test fold: 0..4 or fold0..fold4 (default 0)")
    ap.add_argument(
        "--train-cells",
        nargs="+",
        default=list(STRICT_TRAIN_CELLS),
        help="training cells (default GM12878 HeLa; HeLa matches TargetFinder's HeLa-S3)",
    )
    ap.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    ap.add_argument("--per-cell", action="store_true", help="also write one file per cell")
    ap.add_argument("--shots", type=int, default=0, help="write support.<cell>.bedpe of K pairs")
    ap.add_argument("--seed", type=int, default=0, help="seed of the support draw")
    ap.add_argument("--gzip", action="store_true", help="write .bedpe.gz")
    args = ap.parse_args(argv)

    try:
        fold = fold_name(args.fold)
        data_dir = args.data_dir or REPO / "example_data" / "pairs" / SOURCE_DIRS[args.source]
        df = read_source(data_dir, args.source, assay=args.assay)
        train, test = strict_split(df, fold, args.train_cells)
        leaky_train, leaky_test = cell_only_split(df, fold, args.train_cells)
    except EpcliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    args.out.mkdir(parents=True, exist_ok=True)
    ext = ".bedpe.gz" if args.gzip else ".bedpe"

    write_bedpe(train, args.out / f"train{ext}")
    write_bedpe(test, args.out / f"test{ext}")
    if args.per_cell:
        for name, part in (("train", train), ("test", test)):
            for cell, sub in part.groupby("cell", sort=True):
                write_bedpe(sub, args.out / f"{name}.{cell}{ext}")
    if args.shots:
        if args.shots < 2:
            print("error: --shots must be at least 2", file=sys.stderr)
            return 2
        cells = sorted(test["cell"].unique())
        for cell, sub in support_sets(df, fold, cells, args.shots, args.seed).items():
            write_bedpe(sub, args.out / f"support.{cell}{ext}")

    print(
        f"source {args.source}"
        + (f" ({args.assay})" if args.source == "bengi" else "")
        + f", {fold} held out: {', '.join(FOLDS[fold])}; "
        f"train cells {', '.join(args.train_cells)}"
    )
    _print_summary("train (train cells, other chromosomes)", train)
    _print_summary("test (other cells, held-out chromosomes)", test)
    _print_leakage(
        {
            "cell-only": leakage_figures(leaky_train, leaky_test),
            "strict": leakage_figures(train, test),
        }
    )
    print(f"wrote {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
