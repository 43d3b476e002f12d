"""Benchmark the genome-scale path: `epcli candidates`, then `epcli predict` on its output.

Elements on the real hg38 piece (chr20:70,000-2,990,000, one chromosome-sized region of the
bundled genome): random enhancers (150-2,000 bp) and TSSs (random strand, BENGI windows
with ``--tss``), all pairs within 1 Mb. Two scales share the promoters and differ in the number
of enhancers (default 600 and 6,000 enhancers, 300 TSSs: about 100k and 1M pairs).

Measures, each in a fresh process (peak RSS = ``ru_maxrss`` of that process):
- candidates: pairs/s and peak memory through the library path of the CLI (``Candidates``:
  both BED files read and validated, pairs counted, then written as BEDPE);
- predict: pairs/s and peak memory of a default-config ``prism`` model (random init weights,
  written by ``predict_bench.make_prism_dir``) on those pairs, with the cross-chunk anchor
  cache, ``--chunk-size`` pairs per chunk (default 100,000, as predict's), ``--threads``
  torch threads (default 2); with ``--predict-model default``, of the bundled default model
  (distance prior, no sequence read) instead: the same streaming path without the encoder.

Usage: python benchmarks/genome_bench.py [--out DIR] [--enhancers 600 6000] [--skip-predict]
       [--predict-model prism|default]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_pairs import GENOME


def write_elements(work: Path, n_enh: int, n_tss: int, seed: int = 0) -> tuple[Path, Path]:
    """Random enhancers and TSSs (BED, sorted) on chr20:70,000-2,990,000."""
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.choice(np.arange(70_000, 2_990_000, 3), n_enh, replace=False))
    lens = rng.integers(150, 2001, n_enh)
    enh = work / f"enhancers_{n_enh}.bed"
    with open(enh, "w") as fh:
        for i, (a, n) in enumerate(zip(starts, lens, strict=True)):
            fh.write(f"chr20\t{a}\t{a + n}\tE{i}\n")
    rng = np.random.default_rng(seed + 1)
    tss = np.sort(rng.choice(np.arange(72_000, 2_988_000, 5), n_tss, replace=False))
    pro = work / f"tss_{n_tss}.bed"
    with open(pro, "w") as fh:
        for i, t in enumerate(tss):
            fh.write(f"chr20\t{t}\t{t + 1}\tG{i}\t0\t{'+-'[int(rng.integers(0, 2))]}\n")
    return enh, pro


def run_one(spec: dict) -> dict:
    """One measurement in this process."""
    t0 = time.perf_counter()
    if spec["what"] == "candidates":
        from epcli.candidates import Candidates

        with (
            Candidates(spec["enh"], spec["pro"], max_distance=1_000_000, tss=(1500, 500)) as c,
            open(spec["out"], "w") as fh,
        ):
            n = c.write(fh)
        extra = {}
    else:
        import torch

        torch.set_num_threads(spec["threads"])
        from epcli.inference.cache import WindowCache
        from epcli.inference.predictor import Predictor
        from epcli.io.source import PairsInput
        from epcli.predict import score_to_bedpe

        pred = Predictor.load(spec["model"], device="cpu")
        if pred.is_torch:
            pred.window_cache = WindowCache(512 * 1024**2)
        seq = pred.kind != "distance"
        src = PairsInput(spec["pairs"], GENOME if seq else None, pred.windows, needs_sequence=seq)
        try:
            with open(spec["out"], "w") as fh:
                n = score_to_bedpe(pred, src, fh, chunk_size=spec["chunk_size"]).n
        finally:
            src.close()
        c = pred.window_cache
        extra = {
            "model": pred.kind,
            "encoded_windows": 0 if c is None else c.stats.computed,
            "cache_mib": 0 if c is None else c.nbytes / 1024**2,
        }
    dt = time.perf_counter() - t0
    return {
        "n_pairs": n,
        "seconds": dt,
        "pairs_per_s": n / dt,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **extra,
    }


def child(spec: dict) -> dict:
    """Run ``spec`` in a fresh Python process and return its JSON result."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"child failed: {spec}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enhancers", type=int, nargs=2, default=[600, 6_000])
    ap.add_argument("--tss", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-predict", action="store_true")
    ap.add_argument("--predict-model", choices=["prism", "default"], default="prism")
    ap.add_argument("--chunk-size", type=int, default=100_000, help="predict's pairs per chunk")
    ap.add_argument(
        "--model",
        type=Path,
        default=None,
        help="a trained model directory (overrides --predict-model)",
    )
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(json.loads(args.child))))
        return
    from predict_bench import make_prism_dir

    work = Path(args.out or tempfile.mkdtemp(prefix="epcli-genome-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    rows = []
    for n_enh in args.enhancers:
        enh, pro = write_elements(work, n_enh, args.tss)
        pairs = work / f"candidates_{n_enh}.bedpe"
        r = child({"what": "candidates", "enh": str(enh), "pro": str(pro), "out": str(pairs)})
        rows.append(("candidates", n_enh, r))
        print(
            f"candidates {n_enh:,} enhancers x {args.tss} TSSs: {r['n_pairs']:,} pairs in "
            f"{r['seconds']:.2f} s = {r['pairs_per_s']:,.0f} pairs/s, peak {r['peak_rss_mib']:.0f}"
            " MiB",
            flush=True,
        )
    if not args.skip_predict:
        if args.model is not None:
            model = args.model
        elif args.predict_model == "prism":
            model = work / "prism_model"
            make_prism_dir(model)
        else:
            from epcli.io.modeldir import bundled_default_dir

            model = bundled_default_dir()
        for n_enh in args.enhancers:
            pairs = work / f"candidates_{n_enh}.bedpe"
            r = child(
                {
                    "what": "predict",
                    "model": str(model),
                    "pairs": str(pairs),
                    "out": str(work / f"scored_{n_enh}.bedpe"),
                    "threads": args.threads,
                    "chunk_size": args.chunk_size,
                }
            )
            rows.append(("predict", n_enh, r))
            print(
                f"predict {r['model']} {r['n_pairs']:,} pairs: {r['seconds']:.1f} s = "
                f"{r['pairs_per_s']:,.0f} pairs/s, peak {r['peak_rss_mib']:.0f} MiB, "
                f"{r['encoded_windows']:,} windows encoded, cache {r['cache_mib']:.0f} MiB",
                flush=True,
            )
    for what in ("candidates", "predict"):
        mem = [r["peak_rss_mib"] for w, _, r in rows if w == what]
        if len(mem) == 2:
            print(f"{what}: peak memory large / small = {mem[1] / mem[0]:.2f}x (target <= 1.5x)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    (work / "genome_bench.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
