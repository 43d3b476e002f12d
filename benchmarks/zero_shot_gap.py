"""Where does a prism model's zero-shot gap lie? Its U_I parts against the hidden rule's terms.

On a semi-synthetic set (``benchmarks/run.py`` output: ``prepared/`` and the trained
``models/prism``; the set's ``rule.json`` in ``--data``) the rule's zero-shot logit is a sum
of terms that the motif model's U_I mirrors part by part (docs/synthetic.md):

- ``compat``, the E x P motif-pair term: the model's interaction;
- the enhancer terms without the cell (the training cells' mean TF activity, and composition
  when the set has it): the model's enhancer and promoter motif terms;
- ``decay``: the model's distance term.

For each unseen cell this script scores the cell's test region zero-shot (U_I minus the
population R_E, the score ``run.py`` ranks by, up to the temperature), then again with one
model part replaced by the rule's own term, and prints the AUPRs beside the prevalence, the
oracle and the zero-shot oracle, and each part's correlation with its term. A swap that
gains much names the part the gap lies in; one that gains nothing clears it. The rule's
terms are regenerated from ``rule.json`` (:func:`epcli_bench.synth.generate_with_truth`), so
only sets whose cells share their pairs are read.

Example (the PWM-site rule of docs/benchmarks.md)::

    python benchmarks/zero_shot_gap.py OUT --data DATA
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

from epcli.explain import contribution_batches
from epcli.inference.predictor import Predictor
from epcli.io.hdf5 import load_pairdata
from epcli_bench import synth

REPO = Path(__file__).resolve().parents[1]
GENOME = REPO / "example_data" / "genome" / "hg38_chr20_0-3000000.fa"


def model_parts(model, data) -> dict[str, np.ndarray]:
    """Zero-shot parts of each pair's score: ``interaction``, ``motifs`` (enhancer plus
    promoter motif terms), ``distance`` and ``other`` (bias minus the population R_E), each
    shape (n,)."""
    out: dict[str, list] = {k: [] for k in ("interaction", "motifs", "distance", "other")}
    for _, c in contribution_batches(model, data, batch=256):
        inter = c["pair"].flatten(1).sum(1)
        motifs = c["enhancer"].sum(1) + c["promoter"].sum(1)
        out["interaction"].append(inter)
        out["motifs"].append(motifs)
        out["distance"].append(c["distance"])
        out["other"].append(c["u_i"] - inter - motifs - c["distance"] - c["r_e"])
    return {k: torch.cat(v).double().numpy() for k, v in out.items()}


def gap_table(run_dir: Path, data_dir: Path, model_dir: Path) -> pd.DataFrame:
    """One row per unseen cell: reference AUPRs, the model's zero-shot AUPR, the AUPR with
    each part swapped for the rule's term, and each part's correlation with its term."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import run  # the benchmark's own reader of rule.json

    cfg = run._config_from_rule(json.loads((data_dir / "rule.json").read_text(encoding="utf-8")))
    if not cfg.common_pairs:
        raise SystemExit("the rule's terms are regenerated only for sets with common_pairs")
    df, truth = synth.generate_with_truth(cfg, GENOME)
    n, cells = cfg.pairs_per_cell, list(cfg.cells)
    model = Predictor.load(model_dir, device="cpu").model
    rows = []
    for cell in cfg.unseen_cells:
        ci = cells.index(cell)
        part, terms = df.iloc[ci * n : (ci + 1) * n], truth.terms.iloc[ci * n : (ci + 1) * n]
        test = np.flatnonzero(part["split"].to_numpy() == "test")
        data, _ = load_pairdata([run_dir / "prepared" / f"{cell}.test.h5"])
        y = np.asarray(data.label)
        if y.size != test.size or (y != part["label"].to_numpy()[test]).any():
            raise SystemExit(f"{cell}: the prepared test pairs are not the set's test rows")
        true = {
            "interaction": terms["compat"].to_numpy()[test],
            "distance": terms["decay"].to_numpy()[test],
        }
        zs = terms["zeroshot_logit"].to_numpy()[test]
        true["motifs"] = zs - true["interaction"] - true["distance"]
        got = model_parts(model, data)
        score = sum(got.values())

        def ap(s: np.ndarray, y: np.ndarray = y) -> float:
            return float(average_precision_score(y, s))

        row = {
            "cell": cell,
            "prevalence": float(y.mean()),
            "oracle": ap(part["true_prob"].to_numpy()[test]),
            "zero_shot_oracle": ap(zs),
            "model": ap(score),
        }
        for k in ("interaction", "motifs", "distance"):
            row[f"true_{k}"] = ap(score - got[k] + true[k])
        row["true_all_three"] = ap(got["other"] + sum(true.values()))
        for k in ("interaction", "motifs", "distance"):
            row[f"r_{k}"] = float(np.corrcoef(got[k], true[k])[0, 1])
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path, help="a run.py output folder (prepared/, models/)")
    ap.add_argument("--data", type=Path, help="the set's folder with rule.json (default: RUN/data)")
    ap.add_argument("--model", type=Path, help="prism model directory (default: RUN/models/prism)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    table = gap_table(
        args.run_dir,
        args.data or args.run_dir / "data",
        args.model or args.run_dir / "models" / "prism",
    )
    pd.set_option("display.width", 220)
    print(table.round(3).to_string(index=False))
    print("mean:", table.drop(columns="cell").mean().round(3).to_dict())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
