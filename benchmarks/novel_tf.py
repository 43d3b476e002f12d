"""Can k labeled pairs reveal a TF that no training cell uses? A score test over the motifs
that R_E cannot move.

A prism model's prototype moves a new cell only along the enhancer motifs whose effect varied
between the training cells (the R_E gates, at most 32 of the M x views activity features). A
TF active in an unseen cell and in no training cell is outside them, so adapting cannot find
it. This probe asks whether it could: for each unseen cell of a ``run.py`` output and each of
several seeded k-shot support sets it

1. builds the cell's prototype as ``epcli adapt`` does and scores the support and the test
   region with it (offset refitted on the support);
2. computes, for every activity feature outside the gates (each matrix's every view, from a
   full scan of the enhancer windows), the score test of adding it to that logit: z =
   U / sqrt(I), U = sum (y - p) x, I = sum p (1 - p) (x - x_bar)^2 (x centred by p(1-p));
3. adds the feature with the largest |z| (one coefficient, Newton steps, Gaussian prior SD 1)
   and scores the test region with it, and reports where the TF named by ``--tf`` (the
   cell's novel TF, from ``rule.json``) ranks among the features.

It prints, per cell, k and support seed: the adapted AUPR, the AUPR with the added feature,
the largest |z|, the Bonferroni threshold over the matrices (two-sided 0.05), and the named
TF's best |z| and rank. Its answer on ``jaspar:1`` (docs/benchmarks.md): no; with 64 pairs
the novel TF's |z| is 1.5-3.6 (rank 4 to 1,710 of 11,431 features), the largest |z| of the
others 3.6-4.2, and adding the feature chosen costs 0.08-0.12 AUPR.

Example::

    python benchmarks/novel_tf.py bench_out/synth_j1 --cells U1 --shots 64 128 --tf VSX1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.stats import norm
from sklearn.metrics import average_precision_score

from epcli.core.sampling import stratified_pick
from epcli.inference.engine import score_features
from epcli.inference.predictor import Predictor
from epcli.io.hdf5 import load_pairdata
from epcli.model.motif_read import model_feature_names

#: Newton steps of the added feature's coefficient and of the refitted offset.
STEPS = 30
#: Prior SD of the added coefficient (log-odds per unit of the standardised feature).
PRIOR_SD = 1.0


def full_activity(model, data) -> np.ndarray:
    """Every activity feature of each pair's enhancer window (a full scan), (n, M*views+F)."""
    model.prune_scan = False
    out = []
    with torch.inference_mode():
        for a in range(0, data.enh_seqs.shape[0], 128):
            out.append(model.encode_enhancers(data.enh_seqs[a : a + 128]).float().numpy())
    return np.concatenate(out)[np.asarray(data.enh_idx)]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def refit_offset(logit: np.ndarray, y: np.ndarray) -> float:
    """The support's base-rate offset (Newton on the logistic likelihood)."""
    off = 0.0
    for _ in range(STEPS):
        p = _sigmoid(logit + off)
        off += float((y - p).sum() / max((p * (1 - p)).sum(), 1e-9))
    return off


def score_test(x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """z of adding each column of ``x`` (K, D) to a logistic model with fitted probabilities
    ``p`` (K,); 0 for a constant column."""
    w = p * (1 - p)
    xc = x - (w[:, None] * x).sum(0) / w.sum()
    u = ((y - p)[:, None] * xc).sum(0)
    info = (w[:, None] * xc**2).sum(0)
    return np.where(info > 1e-9, u / np.sqrt(np.maximum(info, 1e-12)), 0.0)


def fit_one(x: np.ndarray, y: np.ndarray, logit: np.ndarray) -> tuple[float, float]:
    """Coefficient and centre of one added feature (MAP, prior SD :data:`PRIOR_SD`)."""
    c = float(x.mean())
    b = 0.0
    for _ in range(STEPS):
        q = _sigmoid(logit + b * (x - c))
        g = ((y - q) * (x - c)).sum() - b / PRIOR_SD**2
        h = (q * (1 - q) * (x - c) ** 2).sum() + 1 / PRIOR_SD**2
        b += float(g / h)
    return b, c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a run.py output folder (models/prism, prepared/)")
    ap.add_argument("--cells", nargs="+", default=["U1"])
    ap.add_argument("--shots", nargs="+", type=int, default=[64])
    ap.add_argument("--seeds", type=int, default=5, help="support sets per cell and k")
    ap.add_argument("--tf", default=None, help="the cell's novel TF (name prefix), to rank")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pred = Predictor.load(args.run / "models" / "prism")
    model = pred.model
    model.eval()
    ids, names = model_feature_names(model)
    gated = (model.gates() > 0).cpu().numpy()
    n_motifs = model.scanner.n_motifs
    thr = norm.isf(0.05 / (2 * n_motifs))
    print(f"{len(ids)} features, {int(gated.sum())} gated; Bonferroni |z| > {thr:.2f}")
    for cell in args.cells:
        sup, _ = load_pairdata([args.run / "prepared" / f"{cell}.support.h5"])
        test, _ = load_pairdata([args.run / "prepared" / f"{cell}.test.h5"])
        y = np.asarray(test.label)
        feats_test, feats_sup = pred.features(test), pred.features(sup)
        x_test, x_sup = full_activity(model, test), full_activity(model, sup)
        y_sup = np.asarray(sup.label)
        pos, neg = np.flatnonzero(y_sup == 1), np.flatnonzero(y_sup == 0)
        zs = average_precision_score(y, score_features(model, feats_test, None)["logit"])
        print(f"== {cell}: zero-shot AUPR {zs:.3f}, prevalence {y.mean():.3f}")
        for k in args.shots:
            for seed in range(args.seeds):
                proto = pred.build_prototype(sup, cell, shots=k, seed=seed).array()
                p, n = stratified_pick(np.random.default_rng(seed), pos, neg, k)
                rows = np.sort(np.concatenate([p, n]))
                ys = y_sup[rows].astype(np.float64)
                sub = {key: (v[rows] if v is not None else None) for key, v in feats_sup.items()}
                logit = score_features(model, sub, proto)["logit"]
                logit = logit + refit_offset(logit, ys)
                z = score_test(x_sup[rows], ys, _sigmoid(logit))
                z[gated] = 0.0
                j = int(np.argmax(np.abs(z)))
                b, c = fit_one(x_sup[rows, j], ys, logit)
                base = score_features(model, feats_test, proto)["logit"]
                added = base + b * (x_test[:, j] - c)
                line = (
                    f"  k={k} seed {seed}: adapted {average_precision_score(y, base):.3f}, "
                    f"with {names[j]} {average_precision_score(y, added):.3f} "
                    f"(|z| {abs(z[j]):.2f}, b {b:+.2f})"
                )
                if args.tf:
                    mine = [i for i, nm in enumerate(names) if nm.upper().startswith(args.tf)]
                    if mine:
                        i = mine[int(np.argmax(np.abs(z[mine])))]
                        rank = int((np.abs(z) > abs(z[i])).sum()) + 1
                        line += f"; {names[i]} |z| {abs(z[i]):.2f}, rank {rank}"
                print(line)


if __name__ == "__main__":
    main()
