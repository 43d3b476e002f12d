"""Benchmark `epcli prepare` on the real hg38 piece.

Measures, for N pairs drawn over a fixed pool of unique anchors (default 5,000 enhancers +
5,000 promoters):
- throughput (pairs/s, end to end: BEDPE parse, validation, window fetch, HDF5 write),
- HDF5 bytes per pair, against a per-pair float32 one-hot layout (4 x (Le + Lp) x 4 bytes),
- peak resident memory (each size runs in a fresh process).

Usage: python benchmarks/prepare_bench.py [--sizes 10000 100000] [--anchors 10000] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_pairs import GENOME, write_random_pairs


def run_one(pairs: Path, out: Path) -> dict:
    """Run prepare in this process; return timing and peak memory."""
    from epcli.prepare import prepare_hdf5

    t0 = time.perf_counter()
    s = prepare_hdf5(pairs, GENOME, out, force=True)
    dt = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "n_pairs": s.n_pairs,
        "n_enhancers": s.n_enhancers,
        "n_promoters": s.n_promoters,
        "seconds": dt,
        "pairs_per_s": s.n_pairs / dt,
        "bytes": out.stat().st_size,
        "bytes_per_pair": out.stat().st_size / s.n_pairs,
        "onehot_f32_bytes_per_pair": 4 * (3000 + 2000) * 4,
        "peak_rss_mib": peak_kib / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--anchors", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(Path(args.child[0]), Path(args.child[1]))))
        return
    work = Path(args.out or tempfile.mkdtemp(prefix="epcli-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for n in args.sizes:
        pairs = work / f"pairs_{n}.bedpe"
        write_random_pairs(pairs, n, args.anchors // 2, args.anchors - args.anchors // 2)
        out = work / f"pairs_{n}.h5"
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(pairs), str(out)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(proc.stdout)
        results.append(r)
        shrink = r["onehot_f32_bytes_per_pair"] / r["bytes_per_pair"]
        print(
            f"{n:>8,} pairs  {r['n_enhancers']:>6,} enh  {r['n_promoters']:>6,} pro  "
            f"{r['seconds']:6.2f} s  {r['pairs_per_s']:>9,.0f} pairs/s  "
            f"{r['bytes_per_pair']:8.1f} B/pair (1/{shrink:.0f} of one-hot f32)"
            f"  peak {r['peak_rss_mib']:.0f} MiB"
        )
    if len(results) >= 2:
        ratio = results[-1]["peak_rss_mib"] / results[0]["peak_rss_mib"]
        print(
            f"peak memory ratio {results[-1]['n_pairs']:,} vs {results[0]['n_pairs']:,} pairs: "
            f"{ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
