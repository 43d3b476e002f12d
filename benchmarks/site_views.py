"""How well each consensus view of a JASPAR family counts a set's planted sites.

For a semi-synthetic set (``benchmarks/make_synth.py``: ``rule.json`` and ``T1.bedpe``), each
planted TF's site count (its rule consensus and mismatch allowance, both strands) is
correlated, over the set's unique enhancer (or promoter) windows, with the count of every
consensus view of the JASPAR matrices whose name starts with one of the TF's family names:
the whole IUPAC consensus or its most informative ``core`` positions
(:meth:`epcli.motifs.pwm.Motif.iupac`), with up to ``mm`` mismatches. Counts are ``log1p``, as
the rule and the model use them. It prints, per TF, the best matrix per view, best first; a
view no model counts yet shows what adding it would buy.

Example (the development rule's six TFs that no counted view matched well)::

    python benchmarks/site_views.py DATA CTCF=CTCF NRF1=NRF1 NFY=NFY YY1=YY1,YY2,ZFP42 \\
        NFKB=REL,NFKB IRF=IRF,STAT2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyfaidx

from epcli.motifs import load_motifs
from epcli_bench.synth import iupac_consensus, motif_hits

#: (core width or None for the whole consensus, mismatches) of the views tried.
VIEWS = [
    (None, 0), (None, 1), (None, 2), (None, 3), (12, 1), (12, 2), (10, 0), (10, 1), (10, 2),
    (8, 0), (8, 1), (8, 2), (6, 0), (6, 1), (5, 0),
]  # fmt: skip
DEFAULT_GENOME = Path(__file__).resolve().parents[1] / "example_data/genome/hg38_chr20_0-3000000.fa"
#: Window widths of the two anchor sides (``make_synth.py``'s defaults).
WINDOW = {"E": 3000, "P": 2000}


def windows(codes: np.ndarray, starts: pd.Series, ends: pd.Series, width: int) -> np.ndarray:
    """Base codes of windows of ``width`` bp centred on each anchor, shape (n, width)."""
    mids = (starts.to_numpy() + ends.to_numpy()) // 2
    lo = np.clip(mids - width // 2, 0, len(codes) - width)
    return np.stack([codes[a : a + width] for a in lo])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="a make_synth.py folder")
    ap.add_argument("tfs", nargs="+", help="TF=FAMILY1,FAMILY2 (JASPAR name prefixes)")
    ap.add_argument("--side", choices=("E", "P"), default="E")
    ap.add_argument("--genome", default=str(DEFAULT_GENOME))
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args()
    rule = json.loads((args.data / "rule.json").read_text())
    pairs = pd.read_csv(args.data / "T1.bedpe", sep="\t")
    fa = pyfaidx.Fasta(args.genome)
    seq = str(fa[rule["chrom"]][:]).upper()
    lut = np.full(256, 4, np.uint8)
    lut[np.frombuffer(b"ACGT", np.uint8)] = np.arange(4)
    codes = lut[np.frombuffer(seq.encode(), np.uint8)]
    a, b = ("start1", "end1") if args.side == "E" else ("start2", "end2")
    u = pairs.drop_duplicates([a, b])
    win = windows(codes, u[a], u[b], WINDOW[args.side])
    planted = {m["name"]: m for m in rule["motifs"]}
    motifs = load_motifs().motifs
    print(f"{len(win)} unique {args.side} windows of {WINDOW[args.side]} bp")
    for spec in args.tfs:
        tf, fams = spec.split("=")
        t = planted[tf]
        y = np.log1p(motif_hits(win, t["consensus"], t["max_mismatch"]).sum(axis=1))
        best: dict[tuple, tuple[float, str, str]] = {}
        for m in motifs:
            if not any(m.name.upper().startswith(f.upper()) for f in fams.split(",")):
                continue
            for core, mm in VIEWS:
                allowed = m.iupac(core)
                if allowed.shape[1] < 5:
                    continue
                cons = iupac_consensus(allowed.astype(float))
                x = np.log1p(motif_hits(win, cons, mm).sum(axis=1))
                r = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 else 0.0
                if r > best.get((core, mm), (-1.0,))[0]:
                    best[(core, mm)] = (r, m.name, cons)
        print(f"{tf} {t['consensus']} <= {t['max_mismatch']}: mean sites {np.expm1(y).mean():.2f}")
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[: args.top]
        for (core, mm), (r, name, cons) in ranked:
            view = "consensus" if core is None else f"core {core} bp"
            print(f"    {view}, <= {mm}: r {r:.3f}  {name} {cons}")


if __name__ == "__main__":
    main()
