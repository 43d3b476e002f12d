"""How far can k labeled pairs move a new cell? Ceilings of few-shot adaptation on a run.py set.

For each unseen cell of a semi-synthetic set written by ``benchmarks/run.py`` (or
``make_synth.py``), this script regenerates the hidden rule's terms and measures, on the
cell's test region:

- **ideal k-shot**: a model that knows the rule exactly (the zero-shot oracle's logit as
  offset: every cell-invariant term and the training cells' mean TF activity) and the true
  cell-specific TF features (the span of all cells' activity terms; with ``--span train``
  the training cells' only, the ceiling of a model that learns its cell features from
  them), fitting only the cell's coefficients over those features by a ridge logistic
  regression on k stratified support pairs (prior SD ``--sd``; several draws). Nothing
  learnt from sequence can adapt better with the same k pairs, so this bounds the k-shot
  lift that the issue's goals ask for;
- with ``--model DIR`` (a trained prism model directory of that run): the model adapted on
  **the whole support region** (~15,000 pairs instead of k), the ceiling of the model's own
  U_I and R_E structure.

Lift = (AUPR - prevalence) / (oracle AUPR - prevalence), as in run.py.

Example::

    python benchmarks/adapt_ceiling.py bench_out/synth_j1 --model bench_out/synth_j1/models/prism
    python benchmarks/adapt_ceiling.py bench_out/synth_j1 --span train --sd 0.3 1 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score

from epcli.model.motif_pairs import ridge_logistic
from epcli_bench import synth

REPO = Path(__file__).resolve().parents[1]
GENOME = REPO / "example_data" / "genome" / "hg38_chr20_0-3000000.fa"


def stratified(rng: np.random.Generator, rows: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """k rows with the classes in the proportion of ``rows`` (at least one of each)."""
    pos, neg = rows[y[rows] == 1], rows[y[rows] == 0]
    n_pos = min(max(1, round(k * pos.size / rows.size)), k - 1)
    return np.concatenate(
        [rng.choice(pos, n_pos, replace=False), rng.choice(neg, k - n_pos, replace=False)]
    )


def ideal(
    set_dir: Path, shots: list[int], sds: list[float], draws: int, span: str = "all"
) -> pd.DataFrame:
    """Ideal k-shot AUPR per unseen cell (rows: cell, k, sd).

    ``span``: "all" fits over the span of every cell's TF activity term; "train" over the
    training cells' only (a TF active in an unseen cell but in no training cell is then
    outside it, as it is for any model that learns its cell features from training cells).
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import run  # the benchmark's own reader of rule.json

    cfg = run._config_from_rule(json.loads((set_dir / "rule.json").read_text(encoding="utf-8")))
    if not cfg.common_pairs:
        raise SystemExit("the ideal fit needs a set whose cells share their pairs (common_pairs)")
    df, truth = synth.generate_with_truth(cfg, GENOME)
    n, cells, terms = cfg.pairs_per_cell, list(cfg.cells), truth.terms
    act = np.stack(
        [terms["activity"].to_numpy()[i * n : (i + 1) * n] for i in range(len(cells))], 1
    )
    if span == "train":
        act = act[:, [cells.index(c) for c in cfg.train_cells]]
    u, s, _ = np.linalg.svd(act - act.mean(0), full_matrices=False)
    env = u[:, s > 1e-6 * s[0]] * np.sqrt(n)  # the cell-specific TF features' span, unit scale
    out = []
    for ci, cell in enumerate(cells):
        if cell not in cfg.unseen_cells:
            continue
        part = df.iloc[ci * n : (ci + 1) * n]
        y = part["label"].to_numpy()
        test = np.flatnonzero(part["split"].to_numpy() == "test")
        sup = np.flatnonzero(part["split"].to_numpy() == "train")
        zs = terms["zeroshot_logit"].to_numpy()[ci * n : (ci + 1) * n]
        ref = {
            "cell": cell,
            "prevalence": float(y[test].mean()),
            "oracle": average_precision_score(y[test], part["true_prob"].to_numpy()[test]),
            "zeroshot_oracle": average_precision_score(y[test], zs[test]),
        }
        for k in shots:
            for sd in sds:
                vals = []
                for draw in range(draws):
                    r = stratified(np.random.default_rng(draw), sup, y, k)
                    x, lab, off = (torch.as_tensor(a) for a in (env[r], y[r], zs[r]))
                    b = ridge_logistic(x, lab.float(), off, sd).double().numpy()
                    vals.append(average_precision_score(y[test], zs[test] + env[test] @ b))
                out.append({**ref, "k": k, "sd": sd, "ideal_aupr": float(np.mean(vals))})
    return pd.DataFrame(out)


def whole_support(run_dir: Path, model_dir: Path) -> pd.DataFrame:
    """The trained model adapted on every support pair of each unseen cell."""
    from epcli.inference.engine import make_prototype_np, score_features
    from epcli.inference.predictor import Predictor
    from epcli.io.hdf5 import load_pairdata

    pred = Predictor.load(model_dir, device="cpu")
    rows = []
    for test_h5 in sorted((run_dir / "prepared").glob("*.test.h5")):
        cell = test_h5.name.split(".")[0]
        test, _ = load_pairdata([test_h5])
        sup, _ = load_pairdata([run_dir / "prepared" / f"{cell}.support.h5"])
        ft, fs = pred.features(test), pred.features(sup)
        y, ys = np.asarray(test.label), np.asarray(sup.label)
        proto = make_prototype_np(pred.model, fs["env"], ys, fs["u_i"])
        zero = score_features(pred.model, ft, None)["logit"]
        whole = score_features(pred.model, ft, proto)["logit"]
        rows.append(
            {
                "cell": cell,
                "support_pairs": int(ys.size),
                "model_zero_shot": average_precision_score(y, zero),
                "model_whole_support": average_precision_score(y, whole),
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path, help="a run.py output folder (its data/ and prepared/)")
    ap.add_argument("--model", type=Path, help="a trained prism model directory of that run")
    ap.add_argument("--shots", type=int, nargs="+", default=[64])
    ap.add_argument("--sd", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    ap.add_argument("--draws", type=int, default=10, help="support draws per k (seeds 0..)")
    ap.add_argument(
        "--span",
        choices=["all", "train"],
        default="all",
        help="cell features of the ideal fit: every cell's TF activity (all) or the training "
        "cells' only (train: the ceiling of a model that learns cell features from them)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    res = ideal(args.run_dir / "data", args.shots, args.sd, args.draws, args.span)
    res["ideal_lift"] = (res["ideal_aupr"] - res["prevalence"]) / (
        res["oracle"] - res["prevalence"]
    )
    pd.set_option("display.width", 200)
    print(res.round(3).to_string(index=False))
    # means over the unseen cells (the lift: the mean of the cells' lifts, as run.py reports)
    print(res.groupby(["k", "sd"])[["ideal_aupr", "ideal_lift"]].mean().round(3).to_string())
    if args.model is not None:
        whole = whole_support(args.run_dir, args.model)
        ref = res.drop_duplicates("cell").set_index("cell")[["prevalence", "oracle"]]
        whole = whole.join(ref, on="cell")
        whole["whole_lift"] = (whole["model_whole_support"] - whole["prevalence"]) / (
            whole["oracle"] - whole["prevalence"]
        )
        print(whole.round(3).to_string(index=False))
        print(
            f"mean whole-support AUPR {whole['model_whole_support'].mean():.3f}, "
            f"lift {whole['whole_lift'].mean():.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
