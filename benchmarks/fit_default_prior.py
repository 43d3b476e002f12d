"""Fit the bundled default model: a distance prior on real labeled pairs (BENGI Hi-C, hg19).

The prior is :class:`epcli.model.baselines.DistanceBaseline` (logistic regression on
``log10(1 + distance / 1000)``); it uses no sequence, so the genome build does not matter.

Protocol (TransEPI strict, see :mod:`epcli_bench.convert`):

1. For each fold f of :data:`epcli_bench.convert.FOLDS`: fit on the training cells (GM12878 +
   HeLa) on chromosomes outside f; score the other cells (HMEC, IMR90, K562, NHEK) on f's
   chromosomes. Every test-cell pair lies on exactly one fold's chromosomes, so pooling the
   five folds scores each held-out pair exactly once, by a model that never saw its
   chromosome or its cell.
2. Report per fold and cell, and pooled per cell: n, positives, prevalence, AUPR (bootstrap
   interval), AUROC, the mean predicted probability (calibration across cells).
3. The shipped model is fitted on the training cells over all chromosomes (more data, same
   two parameters); the card records the held-out figures of step 1 as its validation.
   The TargetFinder pairs (a different labelling of Hi-C contacts) give an external check.

Writes ``src/epcli/data/default_model/`` (``--out``) with :func:`epcli.io.modeldir.save_model_dir`
and, with ``--table``, the per-fold/per-cell figures as TSV.

Example::

    python benchmarks/fit_default_prior.py --table bench_out/default_prior.tsv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from epcli.core.arrays import PairData
from epcli.core.pairs import pair_distance
from epcli.evaluate.metrics import collapse_check, evaluate_table
from epcli.inference.engine import sigmoid
from epcli.inference.predictor import Predictor
from epcli.io.modeldir import bundled_default_dir, load_model_dir, save_model_dir
from epcli.model.baselines import DistanceBaseline
from epcli_bench.convert import (
    FOLDS,
    STRICT_TRAIN_CELLS,
    canonical_cell,
    read_source,
    strict_split,
)

REPO = Path(__file__).resolve().parents[1]
PAIRS = REPO / "example_data" / "pairs"
NAME = "distance prior (BENGI HiC, hg19)"
#: Window sizes recorded in config.json (the prior reads no sequence; the keys are required).
WINDOWS = {"enhancer": 3000, "promoter": 2000}
SEED = 0
C = 1.0


def distance_pairdata(df: pd.DataFrame) -> PairData:
    """Sequence-free :class:`PairData` for a distance-only model.

    Parameters
    ----------
    df : pandas.DataFrame
        Pairs with BEDPE coordinates, ``cell`` and ``label``.

    Returns
    -------
    PairData
        ``distance`` = |promoter midpoint - enhancer midpoint| (shape (n,)); anchor windows
        are empty arrays of shape (1, 0) that every pair indexes.
    """
    n = len(df)
    cells = sorted(df["cell"].unique())
    lookup = {c: i for i, c in enumerate(cells)}
    e_mid = (df["start1"].to_numpy(np.int64) + df["end1"].to_numpy(np.int64)) // 2
    p_mid = (df["start2"].to_numpy(np.int64) + df["end2"].to_numpy(np.int64)) // 2
    return PairData(
        enh_seqs=np.zeros((1, 0), np.uint8),
        pro_seqs=np.zeros((1, 0), np.uint8),
        enh_idx=np.zeros(n, np.int64),
        pro_idx=np.zeros(n, np.int64),
        distance=pair_distance(df),
        cell_idx=np.array([lookup[c] for c in df["cell"]], dtype=np.int64),
        label=df["label"].to_numpy(np.int8),
        chrom=df["chrom1"].to_numpy(object),
        enh_mid=e_mid,
        pro_mid=p_mid,
        cells=cells,
    )


def _table(scores: np.ndarray, df: pd.DataFrame, bootstrap: int) -> pd.DataFrame:
    """evaluate_table per cell plus the mean predicted probability; shape (cells + 1, 16)."""
    t = evaluate_table(
        scores,
        df["label"].to_numpy(),
        pair_distance(df),
        df["cell"].to_numpy(object),
        bootstrap=bootstrap,
        seed=SEED,
    )
    prob = sigmoid(scores)
    mean = {c: float(prob[(df["cell"] == c).to_numpy()].mean()) for c in df["cell"].unique()}
    mean["ALL"] = float(prob.mean())
    t["mean_prob"] = t["cell"].map(mean)
    return t


def _cells(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    g = df.groupby("cell", sort=True)["label"]
    return {
        c: {"n": int(s.size), "n_pos": int(s.sum()), "prevalence": float(s.mean())} for c, s in g
    }


def _per_cell(t: pd.DataFrame) -> dict[str, dict[str, Any]]:
    keep = ("n", "n_pos", "prevalence", "aupr", "aupr_lo", "aupr_hi", "auroc", "mean_prob")
    return {
        r["cell"]: {k: (int(r[k]) if k in ("n", "n_pos") else round(float(r[k]), 4)) for k in keep}
        for _, r in t.iterrows()
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=bundled_default_dir(), help="model directory")
    ap.add_argument("--table", type=Path, default=None, help="write per-fold figures (TSV)")
    ap.add_argument("--bootstrap", type=int, default=1000, help="AUPR bootstrap resamples")
    args = ap.parse_args(argv)

    bengi = read_source(PAIRS / "transepi_bengi", "bengi", assay="HiC")
    all_files = sorted(p.name for p in (PAIRS / "transepi_bengi").glob("*.HiC-Benchmark*.tsv*"))
    files = [f for f in all_files if canonical_cell(f.split(".")[0]) in STRICT_TRAIN_CELLS]
    test_files = [f for f in all_files if f not in files]

    # 1. strict cross-validation over the five folds
    rows: list[pd.DataFrame] = []
    folds: list[dict[str, Any]] = []
    pooled_scores: list[np.ndarray] = []
    pooled_df: list[pd.DataFrame] = []
    for fold in FOLDS:
        train, test = strict_split(bengi, fold, STRICT_TRAIN_CELLS)
        model = DistanceBaseline(C=C, seed=SEED).fit(distance_pairdata(train))
        s = model.logit(distance_pairdata(test))
        t = _table(s, test, args.bootstrap)
        t.insert(0, "fold", fold)
        rows.append(t)
        pooled_scores.append(s)
        pooled_df.append(test)
        folds.append(
            {
                "fold": fold,
                "held_out_chromosomes": list(FOLDS[fold]),
                "n_train": int(len(train)),
                "coef": float(model.coef_[0]),
                "intercept": float(model.intercept_),
                "per_cell": _per_cell(t),
            }
        )
    test_all = pd.concat(pooled_df, ignore_index=True)
    pooled = _table(np.concatenate(pooled_scores), test_all, args.bootstrap)
    pooled.insert(0, "fold", "pooled")
    rows.append(pooled)
    cv = pd.concat(rows, ignore_index=True)

    # 2. the shipped model: training cells, all chromosomes
    train_all = bengi[bengi["cell"].map(canonical_cell).isin(STRICT_TRAIN_CELLS)]
    final = DistanceBaseline(C=C, seed=SEED).fit(distance_pairdata(train_all))
    train_logit = final.logit(distance_pairdata(train_all))
    train_tab = _table(train_logit, train_all, 0)
    y = train_all["label"].to_numpy(np.float64)
    p = np.clip(sigmoid(train_logit), 1e-12, 1 - 1e-12)
    train_loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    # 3. external check on TargetFinder (all cells, all chromosomes; the prior never saw it)
    tf = read_source(PAIRS / "targetfinder", "targetfinder")
    tf_tab = _table(final.logit(distance_pairdata(tf)), tf, args.bootstrap)

    collapsed = collapse_check(np.concatenate(pooled_scores))
    card: dict[str, Any] = {
        "name": NAME,
        "model_kind": "distance",
        "uses_sequence": False,
        "summary": (
            "Distance-only prior: P(interaction) = sigmoid(a * z + b) with z the standardised "
            "log10(1 + d / 1000), d = |promoter midpoint - enhancer midpoint| in bp. It uses "
            "NO sequence and no cell information: every cell line gets the same score for "
            "the same distance. It is the fallback when no --model is given; train your own "
            "model (epcli train) for sequence-based predictions."
        ),
        "components": {
            "distance": {"active": True, "note": "the only feature"},
            "sequence": {"active": False, "note": "no sequence is read"},
            "environment_prototype": {
                "active": False,
                "note": "no R_E; epcli adapt only sets the cell's decision thresholds",
            },
        },
        "genome_build": "fitted on hg19 pairs; distance does not depend on the genome build",
        "windows_note": "config windows are recorded for the interface; no sequence is read",
        "training_data": {
            "source": "BENGI (Moore et al. 2020) Hi-C benchmark as repackaged by TransEPI",
            "files": files,
            "cells": _cells(train_all),
            "chromosomes": "all",
            "distance": "|promoter window midpoint - enhancer midpoint|",
        },
        "parameters": {
            "coef": float(final.coef_[0]),
            "intercept": float(final.intercept_),
            "scaler_mean": float(final.mean_[0]),
            "scaler_scale": float(final.scale_[0]),
            "C": C,
            "seed": SEED,
        },
        "validation": {
            "protocol": (
                "TransEPI strict: train GM12878 + HeLa on chromosomes outside the fold, test "
                "HMEC, IMR90, K562, NHEK on the fold's chromosomes; five folds pooled (each "
                "held-out pair scored once)"
            ),
            "files": test_files,
            "folds": {f: list(c) for f, c in FOLDS.items()},
            "held_out_per_cell": _per_cell(pooled),
            "per_fold": folds,
            "note": (
                "AUPR depends on prevalence; compare each AUPR with its cell's prevalence. "
                "Within a fold the prior ranks pairs exactly as distance does (a monotone "
                "function of it), so its AUPR equals epcli evaluate's distance_aupr; pooled "
                "over folds they differ slightly because five fitted models are mixed."
            ),
        },
        "external_check": {
            "data": "TargetFinder (Whalen et al. 2016) pairs, all cells and chromosomes",
            "note": (
                "TargetFinder drew its negatives to match the positives' distances, so "
                "distance carries no signal there: AUPR about equal to prevalence is expected"
            ),
            "per_cell": _per_cell(tf_tab),
        },
        "training_fit": {"per_cell": _per_cell(train_tab), "log_loss": round(train_loss, 5)},
        "collapse_check": collapsed or "ok",
        "bootstrap": args.bootstrap,
    }
    history = [
        {
            "epoch": 1,
            "train_loss": train_loss,
            "train_aupr": float(train_tab.loc[train_tab["cell"] == "ALL", "aupr"].iloc[0]),
            "heldout_aupr": float(pooled.loc[pooled["cell"] == "ALL", "aupr"].iloc[0]),
        }
    ]
    train_config = {
        "model": "distance",
        "C": C,
        "seed": SEED,
        "train_cells": list(STRICT_TRAIN_CELLS),
        "source": "bengi",
        "assay": "HiC",
    }
    fp = save_model_dir(
        args.out,
        kind="distance",
        model_config=None,
        train_config=train_config,
        windows=WINDOWS,
        model_card=card,
        history=history,
        params=final.to_json(),
        data_files=files,
        split={"protocol": "all chromosomes of the training cells", "cells": ["GM12878", "HeLa"]},
        force=True,
    )

    # check: the written directory loads and scores exactly like the fitted model
    loaded = Predictor.load(args.out)
    again = loaded.score(distance_pairdata(train_all))["logit"]
    if not np.allclose(again, train_logit, rtol=0, atol=1e-9):
        print("error: the written model does not score like the fitted one", file=sys.stderr)
        return 1
    assert load_model_dir(args.out).fingerprint == fp

    pd.set_option("display.width", 200)
    cols = ["fold", "cell", "n", "n_pos", "prevalence", "aupr", "aupr_lo", "aupr_hi", "auroc"]
    cols += ["mean_prob", "distance_aupr"]
    print(cv[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("\nexternal check, TargetFinder (bundled model):")
    print(tf_tab[cols[1:]].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(
        f"\nbundled model: coef {final.coef_[0]:.6f} intercept {final.intercept_:.6f} "
        f"(scaler mean {final.mean_[0]:.6f} scale {final.scale_[0]:.6f}); "
        f"train log-loss {train_loss:.5f}; fingerprint {fp}; collapse check: {collapsed or 'ok'}"
    )
    print(f"wrote {args.out}")
    if args.table is not None:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        cv.to_csv(args.table, sep="\t", index=False, float_format="%.6g")
        print(f"wrote {args.table}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
