"""How well each log-odds level of a planted TF's own JASPAR matrix counts the TF's sites.

For a semi-synthetic set (``benchmarks/make_synth.py``: ``rule.json`` and ``T1.bedpe``) drawn
from JASPAR (``jaspar:SEED`` or ``jaspar-pwm:SEED``), each planted TF's site count over the
set's unique enhancer windows (``log1p``, as the rule uses it) is correlated with the count
of the same matrix's hits at relative log-odds levels (the model's log-odds: a human
background and its pseudocount, :meth:`epcli.motifs.pwm.Motif.log_odds`; a level is the
fraction of the way from the lowest to the highest possible score): at the four levels the
``consensus+cores`` site set blends into one view, at the best level of a 0.025 grid, and
with the blend itself (the mean of the four levels' counts, each scaled to mean 1, as the
blended view starts), and at the hit rates of the ``rates+cores`` set (each matrix's own
levels from its exact score distribution under the background,
:func:`epcli.model.motif_sites.rate_levels`). Last, the best level within 0.04 of the best
shared one (a 0.01 grid), as the warm start refines a used view
(:mod:`epcli.model.motif_levels`), with the genome background and with the matrix rebased
on a uniform one. It prints one line per TF and the mean of each column.

Example (the PWM-site rule of docs/benchmarks.md)::

    python benchmarks/level_views.py DATA
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyfaidx

from epcli.model.motif_levels import OFFSETS
from epcli.model.motif_sites import FINE_LEVELS, LEVELS, RATES, SiteLayout, rate_levels
from epcli.motifs import load_motifs
from epcli_bench import synth
from epcli_bench.pwm_sites import pwm_scores
from site_views import DEFAULT_GENOME, windows

#: The shared levels of ``levels+cores``, one view each.
VIEW_LEVELS = SiteLayout("levels+cores").levels
#: The fine grid of levels the best single level is taken from.
GRID = tuple(np.round(np.arange(0.6, 0.99, 0.025), 3))


def _r(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="a make_synth.py folder with a JASPAR rule")
    ap.add_argument("--genome", default=str(DEFAULT_GENOME))
    ap.add_argument("--windows", type=int, default=800, help="unique enhancer windows used")
    args = ap.parse_args()
    rule = json.loads((args.data / "rule.json").read_text())
    pairs = pd.read_csv(args.data / "T1.bedpe", sep="\t")
    seq = str(pyfaidx.Fasta(args.genome)[rule["chrom"]][:]).upper()
    lut = np.full(256, 4, np.uint8)
    lut[np.frombuffer(b"ACGT", np.uint8)] = np.arange(4)
    codes = lut[np.frombuffer(seq.encode(), np.uint8)]
    u = pairs.drop_duplicates(["start1", "end1"]).iloc[: args.windows]
    win = windows(codes, u["start1"], u["end1"], 3000)
    ms = load_motifs()
    by_id = {m.id: m for m in ms.motifs}
    background = ms.background
    rows = []
    for t in rule["motifs"]:
        motif = synth.Motif(**t)
        y = np.log1p(synth.site_hits(win, motif).sum(axis=1))

        def r_at(rel: np.ndarray, lv: float, y: np.ndarray = y) -> float:
            return _r(np.log1p((rel >= lv).sum(axis=1)), y)

        lo = by_id[t["source"].split()[2]].log_odds().T  # (k, 4)
        best, worst = lo.max(axis=1).sum(), lo.min(axis=1).sum()
        rel = (pwm_scores(win, lo) - worst) / (best - worst)
        hits = {lv: (rel >= lv).sum(axis=1) for lv in sorted(set(GRID) | set(LEVELS))}
        r = {lv: _r(np.log1p(h), y) for lv, h in hits.items()}
        own = rate_levels(lo.T[None], np.array([len(lo)]), background, RATES)[0]
        r_rate = {
            q: _r(np.log1p((rel >= lv).sum(axis=1)), y) for q, lv in zip(RATES, own, strict=True)
        }
        rate = max(RATES, key=lambda q: r_rate[q])
        shared = max(VIEW_LEVELS, key=lambda lv: r_at(rel, lv))
        near = [round(min(max(shared + o, 0.5), 1.0), 2) for o in (0.0, *OFFSETS)]
        lo_u = lo + np.log2(np.asarray(background) / 0.25)[None, :]  # rebased on uniform
        rel_u = (pwm_scores(win, lo_u) - lo_u.min(1).sum()) / np.ptp(lo_u, 1).sum()
        r_near = max(r_at(rel, lv) for lv in near)
        r_unif = max(r_at(rel_u, lv) for lv in near)
        blend = np.mean([hits[lv] / max(hits[lv].mean(), 0.05) for lv in LEVELS], axis=0)
        top = max(GRID, key=lambda lv: r[lv])
        fine = max(FINE_LEVELS, key=lambda lv: r[lv])
        rows.append(
            {"tf": t["name"], "sites": float(np.expm1(y).mean()), "blend": _r(np.log1p(blend), y)}
            | {f"{lv:g}": r[lv] for lv in LEVELS}
            | {"best fine level": f"{fine:g}", "r fine": r[fine]}
            | {"best grid level": f"{top:g}", "r grid": r[top]}
            | {"best rate": f"{rate:g}", "r rate": r_rate[rate]}
            | {"r near": r_near, "r near uniform": r_unif}
        )
    table = pd.DataFrame(rows)
    print(f"{len(win)} unique enhancer windows of 3000 bp")
    print(table.round(2).to_string(index=False))
    print("mean r:", table.select_dtypes("number").drop(columns="sites").mean().round(3).to_dict())


if __name__ == "__main__":
    main()
