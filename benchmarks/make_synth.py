"""Write a semi-synthetic EPI benchmark (known rule, real sequence) to a folder.

One BEDPE per cell line (``<cell>.bedpe``: the ten BEDPE columns, then ``cell label split
true_prob``), the hidden rule as ``rule.json`` and a per-cell summary as ``summary.tsv``.
The summary (n, positives, prevalence, oracle AUPR, zero-shot oracle AUPR, distance-only
AUPR on the train and test regions) is also printed.

Example (the set in example_data/synth)::

    python benchmarks/make_synth.py -o example_data/synth --seed 0 --n-enhancers 600 \
        --n-promoters 200 --pairs-per-cell 2000 --composition-scale 1.5

A benchmark-sized set::

    python benchmarks/make_synth.py -o synth_bench --seed 0 \
        --n-enhancers 1500 --n-promoters 400 --pairs-per-cell 20000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from epcli.core import schema
from epcli.core.errors import EpcliError
from epcli_bench import synth

DEFAULT_GENOME = Path(__file__).resolve().parents[1] / "example_data/genome/hg38_chr20_0-3000000.fa"
SUMMARY_COLUMNS = (
    "cell",
    "role",
    "split",
    "n",
    "n_pos",
    "prevalence",
    "oracle_aupr",
    "zeroshot_aupr",
    "distance_aupr",
)


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = synth.SynthConfig()
    p = argparse.ArgumentParser(
        description="Write a semi-synthetic EPI set with a known rule on real sequence.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    p.add_argument("--genome", type=Path, default=DEFAULT_GENOME, help="FASTA file")
    p.add_argument("--chrom", default=None, help="contig (default: the FASTA's first)")
    p.add_argument("--start", type=int, default=None, help="region start (0-based)")
    p.add_argument("--end", type=int, default=None, help="region end (exclusive)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--n-enhancers", type=int, default=d.n_enhancers)
    p.add_argument("--n-promoters", type=int, default=d.n_promoters)
    p.add_argument("--pairs-per-cell", type=int, default=d.pairs_per_cell)
    p.add_argument(
        "--own-pairs",
        action="store_true",
        help="each cell draws its own pairs (default: all cells share the same pairs)",
    )
    p.add_argument("--prevalence", type=float, default=d.prevalence)
    p.add_argument("--train-cells", type=_names, default=d.train_cells, help="comma-separated")
    p.add_argument("--unseen-cells", type=_names, default=d.unseen_cells, help="comma-separated")
    p.add_argument("--n-active", type=int, default=d.n_active, help="active TFs per cell")
    p.add_argument("--min-distance", type=int, default=d.min_distance)
    p.add_argument("--max-distance", type=int, default=d.max_distance)
    p.add_argument("--n-blocks", type=int, default=d.n_blocks)
    p.add_argument("--test-blocks", type=_ints, default=d.test_blocks, help="comma-separated")
    p.add_argument("--compat-scale", type=float, default=d.compat_scale, help="a")
    p.add_argument("--activity-scale", type=float, default=d.activity_scale, help="b")
    p.add_argument("--distance-slope", type=float, default=d.distance_slope, help="c")
    p.add_argument(
        "--composition-scale",
        type=float,
        default=d.composition_scale,
        help="g: SD of the GC-composition term (0 leaves it out)",
    )
    p.add_argument(
        "--cell-composition-scale",
        type=float,
        default=d.cell_composition_scale,
        help="h: SD of the cell-specific enhancer-GC term, sign alternating over the cells "
        "(0 leaves it out)",
    )
    p.add_argument(
        "--motif-set",
        default=d.motif_set,
        help="'default' (the development rule), 'jaspar:SEED' (a rule drawn from JASPAR 2024) or "
        "'jaspar-pwm:SEED' (the same with PWM score sites)",
    )
    p.add_argument("--force", action="store_true", help="replace files in a non-empty folder")
    return p.parse_args(argv)


def summarise(df: pd.DataFrame, truth: synth.SynthTruth) -> pd.DataFrame:
    """Per cell and region: n, positives, prevalence and the three reference AUPRs."""
    df = df.assign(_zs=truth.terms["zeroshot_logit"].to_numpy())
    rows = []
    for split in (synth.SPLIT_TRAIN, synth.SPLIT_TEST, "all"):
        part = df if split == "all" else df[df[synth.COL_SPLIT] == split]
        if part.empty:
            continue
        oracle = synth.oracle_aupr(part)
        zs = synth.aupr_by_cell(part, "_zs")
        dist = synth.distance_aupr(part)
        for cell, g in part.groupby(schema.COL_CELL, sort=False):
            y = g[schema.COL_LABEL].to_numpy()
            rows.append(
                {
                    "cell": cell,
                    "role": "train" if cell in truth.config.train_cells else "unseen",
                    "split": split,
                    "n": int(y.size),
                    "n_pos": int(y.sum()),
                    "prevalence": float(y.mean()),
                    "oracle_aupr": float(oracle[cell]),
                    "zeroshot_aupr": float(zs[cell]),
                    "distance_aupr": float(dist[cell]),
                }
            )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = synth.SynthConfig(
        seed=args.seed,
        chrom=args.chrom,
        start=args.start,
        end=args.end,
        n_enhancers=args.n_enhancers,
        n_promoters=args.n_promoters,
        pairs_per_cell=args.pairs_per_cell,
        common_pairs=not args.own_pairs,
        prevalence=args.prevalence,
        train_cells=args.train_cells,
        unseen_cells=args.unseen_cells,
        n_active=args.n_active,
        min_distance=args.min_distance,
        max_distance=args.max_distance,
        n_blocks=args.n_blocks,
        test_blocks=args.test_blocks,
        compat_scale=args.compat_scale,
        activity_scale=args.activity_scale,
        distance_slope=args.distance_slope,
        composition_scale=args.composition_scale,
        cell_composition_scale=args.cell_composition_scale,
        motif_set=args.motif_set,
    )
    out: Path = args.out
    try:
        if out.exists() and not out.is_dir():
            raise EpcliError("output exists and is not a folder", path=out)
        if out.is_dir() and any(out.glob("*.bedpe")) and not args.force:
            raise EpcliError(
                "output folder already holds BEDPE files", path=out, hint="use --force"
            )
        df, truth = synth.generate_with_truth(cfg, args.genome)
        synth.write_set(df, truth, out, args.genome.name)
        summary = summarise(df, truth)
        summary.to_csv(out / "summary.tsv", sep="\t", index=False, float_format="%.4f")
    except EpcliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(
        f"# {len(df)} pairs, {df['start1'].nunique()} enhancers, {df['start2'].nunique()} "
        f"promoters -> {out}",
        file=sys.stderr,
    )
    with pd.option_context("display.width", 120, "display.max_rows", 200):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
