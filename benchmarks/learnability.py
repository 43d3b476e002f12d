"""One-motif learnability test: can a model learn that one TF site makes a pair interact?

Pairs on the real 3 Mb of hg38 sequence: each enhancer window (3 kb) is paired with a random
promoter window; label = 1 when the enhancer window holds a site of the chosen consensus (both
strands, exact IUPAC match), with no noise and no distance signal. The model trains on
windows of the first 75% of the region and is scored on the windows of the last 25% (a new
genome block no training window overlaps). AUPR >= 0.9 there means the model learns the
motif rule and not the training windows.

Example::

    python benchmarks/learnability.py -o bench_out/learn --model prism --budget-s 120
    python benchmarks/learnability.py -o bench_out/learn --consensus CACGTG --name EBOX
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from epcli.core import schema
from epcli.io.genome import Genome
from epcli_bench import synth

REPO = Path(__file__).resolve().parents[1]
GENOME = REPO / "example_data" / "genome" / "hg38_chr20_0-3000000.fa"


def make_pairs(consensus: str, n: int, seed: int) -> pd.DataFrame:
    """Pairs with the one-motif label, ``split`` = train (first 75%) / test (last 25%)."""
    rng = np.random.default_rng(seed)
    with Genome(GENOME) as g:
        chrom = next(iter(g.lengths))
        codes, _ = g.window(chrom, 0, g.lengths[chrom])
    real = np.flatnonzero(codes < 4)
    lo, hi = int(real[0]) + 2000, int(real[-1]) - 2000
    cut = lo + int(0.75 * (hi - lo))
    rows = []
    for split, (a, b) in (("train", (lo, cut - 5000)), ("test", (cut + 5000, hi))):
        m = int(n * (b - a) / (hi - lo))
        mids = np.sort(rng.integers(a, b, size=m))
        pmids = rng.integers(a, b, size=m)
        for em, pm in zip(mids, pmids, strict=True):
            win = codes[em - 1500 : em + 1500]
            if (win == 4).any() or (codes[pm - 1000 : pm + 1000] == 4).any() or em == pm:
                continue
            label = int(synth.motif_hits(win, consensus, 0).any())
            rows.append((chrom, em - 250, em + 250, chrom, pm - 1000, pm + 1000, label, split))
    df = pd.DataFrame(
        rows, columns=["chrom1", "start1", "end1", "chrom2", "start2", "end2", "label", "split"]
    )
    df["name"] = [f"E{i}" for i in range(len(df))]
    df["score"] = df["strand1"] = df["strand2"] = schema.MISSING
    df["cell"] = "C1"
    return df


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--out", type=Path, required=True)
    p.add_argument("--consensus", default="TGASTCA", help="IUPAC site (default AP-1)")
    p.add_argument("--name", default="AP1")
    p.add_argument("--model", default="prism")
    p.add_argument("--n", type=int, default=2000, help="enhancer windows (both blocks)")
    p.add_argument("--budget-s", type=float, default=120.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--finetune",
        action="store_true",
        help="train the PWM layer too (motif_finetune; default: JASPAR matrices frozen)",
    )
    args = p.parse_args(argv)

    from epcli.cli.train import format_epoch
    from epcli.inference.predictor import Predictor
    from epcli.io.hdf5 import load_pairdata
    from epcli.model.config import ModelConfig
    from epcli.prepare import prepare_hdf5
    from epcli.train import TrainConfig, train

    args.out.mkdir(parents=True, exist_ok=True)
    df = make_pairs(args.consensus, args.n, args.seed)
    cols = list(schema.BEDPE_STANDARD) + ["cell", "label"]
    data = {}
    for split in ("train", "test"):
        bed = args.out / f"{split}.bedpe"
        part = df[df["split"] == split]
        with open(bed, "w") as fh:
            fh.write("#" + "\t".join(cols) + "\n")
            part[cols].to_csv(fh, sep="\t", header=False, index=False)
        h5 = args.out / f"{split}.h5"
        prepare_hdf5(bed, GENOME, h5, force=True)
        data[split], _ = load_pairdata([h5])
    t0 = time.time()
    tcfg = TrainConfig(
        model=args.model,
        epochs=1000,
        max_time=args.budget_s,
        steps_per_epoch=40,
        patience=5,
        lr=0.01,
        val_cells=[],
        seed=args.seed,
        num_threads=2,
    )
    mcfg = ModelConfig(kind=args.model, use_distance=False, motif_finetune=args.finetune)
    res = train(
        data["train"],
        tcfg,
        mcfg,
        args.out / "model",
        force=True,
        log=lambda m: print(m, file=sys.stderr),
        on_epoch=lambda r: print(format_epoch(r), file=sys.stderr),
    )
    pred = Predictor.load(args.out / "model", device="cpu")
    test = data["test"]
    logit = pred.score(test)["logit"]
    y = np.asarray(test.label)
    result = {
        "motif": args.name,
        "consensus": args.consensus,
        "model": args.model,
        "train_windows": int(data["train"].n_pairs),
        "test_windows": int(test.n_pairs),
        "prevalence_test": float(y.mean()),
        "aupr_test_block": float(average_precision_score(y, logit)),
        "train_seconds": round(time.time() - t0, 1),
        "best_epoch": res.best_epoch,
        "top_motifs": res.model_card.get("top_motifs", [])[:5],
    }
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
