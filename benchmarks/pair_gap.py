"""Which of a semi-synthetic rule's E x P pairs a prism model reads well, pair by pair.

``benchmarks/zero_shot_gap.py`` says how much of a model's zero-shot gap lies in its E x P
term as a whole. This script takes the term apart on one unseen cell's test pairs (the
rule's terms are the same for every cell): for each planted pair (a, b, w) of ``rule.json``
it recomputes the rule's own features, ``z(log1p(site count))`` of TF a on the enhancer
windows and of TF b on the promoter windows, and prints the model's view (among those its
interaction reads) that correlates best with each side, the correlation of their product
with the rule's, and the model's weight on that view pair. Last, the correlation of the
model's whole E x P term with the rule's, and that of a least-squares refit of the rule's
term on the products of the model's own views (with their main effects): what better
weights alone could reach.

Example (the PWM-site rules of docs/benchmarks.md)::

    python benchmarks/pair_gap.py OUT --data DATA --cell U1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from epcli.inference.predictor import Predictor
from epcli.io.hdf5 import load_pairdata
from epcli.model.motif_read import model_feature_names
from epcli_bench import synth


def rule_motifs(rule: dict) -> list[synth.Motif]:
    """The rule's motifs from ``rule.json``'s ``motifs`` entries."""
    out = []
    for m in rule["motifs"]:
        pwm = tuple(tuple(r) for r in m["pwm"]) if m.get("pwm") else None
        out.append(
            synth.Motif(
                m["name"],
                m["consensus"],
                m["max_mismatch"],
                m["source"],
                pwm,
                m.get("min_score", 0.0),
            )  # fmt: skip
        )
    return out


def _r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r; 0 when either side is constant."""
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _z(x: np.ndarray) -> np.ndarray:
    """Columns standardised (a constant column stays 0)."""
    sd = x.std(0)
    return (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)


def encode(model, seqs: np.ndarray, side: str, batch: int = 128) -> np.ndarray:
    """Standardised activities (N, M * views + F) of windows (N, L)."""
    enc = model.encode_enhancers if side == "enhancer" else model.encode_promoters
    with torch.inference_mode():
        parts = [enc(seqs[a : a + batch]) for a in range(0, len(seqs), batch)]
    return torch.cat(parts).double().numpy()


def pair_table(run_dir: Path, data_dir: Path, cell: str) -> tuple[list[dict], dict]:
    """One row per planted pair, and the whole term's correlations."""
    rule = json.loads((data_dir / "rule.json").read_text(encoding="utf-8"))
    motifs = rule_motifs(rule)
    idx = {m.name: i for i, m in enumerate(motifs)}
    model = Predictor.load(run_dir / "models" / "prism", device="cpu").model.eval()
    data, _ = load_pairdata([run_dir / "prepared" / f"{cell}.test.h5"])
    enh, pro = np.asarray(data.enh_seqs), np.asarray(data.pro_seqs)
    ei, pi = np.asarray(data.enh_idx), np.asarray(data.pro_idx)
    fe = synth.motif_features(synth.motif_counts(enh, motifs))
    fp = synth.motif_features(synth.motif_counts(pro, motifs))
    te, tp = _z(encode(model, enh, "enhancer")), _z(encode(model, pro, "promoter"))
    w = model.interaction_matrix().detach().double().numpy()
    _, names = model_feature_names(model)
    rows, cols = np.flatnonzero((w != 0).any(1)), np.flatnonzero((w != 0).any(0))
    if not rows.size:
        raise SystemExit("the model has no E x P pairs")
    model_term = sum(w[i, j] * te[ei, i] * tp[pi, j] for i in rows for j in cols if w[i, j])
    true_term = np.zeros(ei.size)
    out = []
    for a, b, weight in rule["interactions"]:
        term = weight * fe[ei, idx[a]] * fp[pi, idx[b]]
        true_term += term
        r_e = [abs(_r(te[:, i], fe[:, idx[a]])) for i in rows]
        r_p = [abs(_r(tp[:, j], fp[:, idx[b]])) for j in cols]
        i, j = rows[int(np.argmax(r_e))], cols[int(np.argmax(r_p))]
        out.append(
            {
                "pair": f"{a} x {b}",
                "weight": weight,
                "term_sd": float(term.std()),
                "enhancer_view": names[i],
                "r_enhancer": max(r_e),
                "promoter_view": names[j],
                "r_promoter": max(r_p),
                "r_product": _r(te[ei, i] * tp[pi, j], fe[ei, idx[a]] * fp[pi, idx[b]]),
                "model_weight": float(w[i, j]),
            }
        )
    prods = np.stack([te[ei, i] * tp[pi, j] for i in rows for j in cols], 1)
    x = np.c_[prods, te[ei][:, rows], tp[pi][:, cols], np.ones(ei.size)]
    beta, *_ = np.linalg.lstsq(x, true_term, rcond=None)
    whole = {
        "r_model_term": _r(model_term, true_term),
        "r_refit_on_model_views": _r(x @ beta, true_term),
        "products": int(prods.shape[1]),
    }
    return out, whole


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path, help="a run.py output folder (prepared/, models/)")
    ap.add_argument("--data", type=Path, help="the set's folder with rule.json (default: RUN/data)")
    ap.add_argument("--cell", default="U1", help="the unseen cell whose test pairs are read")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    rows, whole = pair_table(args.run_dir, args.data or args.run_dir / "data", args.cell)
    for r in rows:
        print(
            f"{r['pair']} ({r['weight']:+.2f}, term SD {r['term_sd']:.2f}): "
            f"E {r['enhancer_view']} r {r['r_enhancer']:.2f} | "
            f"P {r['promoter_view']} r {r['r_promoter']:.2f} | "
            f"product r {r['r_product']:.2f} | model weight {r['model_weight']:+.2f}"
        )
    print(
        f"E x P term: r {whole['r_model_term']:.3f} with the rule's; refitted on the model's "
        f"{whole['products']} view products: r {whole['r_refit_on_model_views']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
