"""Benchmark training throughput (pairs/s) of `epcli.train.train` on CPU.

For each model kind (default ``prism`` and ``crossattn``, default model config, windows
3,000 / 2,000 bp) and each torch thread count (default 1 and 2), a short run (1 epoch of
``--steps`` optimizer steps, bounded by ``--max-time`` seconds) trains on a small PairData
read from the real hg38 piece: random cis pairs over 3 cell lines with random labels
(~25 % positive; only the speed is measured, not what is learned). The figure is
``train_pairs_per_s`` of the returned history (pairs seen in the optimizer steps / their
wall time, validation excluded). Each run is a fresh process.

Usage: python benchmarks/train_bench.py [--quick] [--models prism crossattn] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_pairs import GENOME, write_random_pairs

WINDOWS = {"enhancer": 3000, "promoter": 2000}
CELLS = ("GM12878", "K562", "HeLa")


def run_one(spec: dict) -> dict:
    """Train once in this process; return the history's throughput and the run's facts."""
    import torch

    from epcli.io.source import PairsInput
    from epcli.model.config import ModelConfig
    from epcli.train import TrainConfig, train

    src = PairsInput(spec["pairs"], GENOME, WINDOWS)
    try:
        _, data = src.read_all()
    finally:
        src.close()
    tcfg = TrainConfig(
        model=spec["model"],
        epochs=1,
        steps_per_epoch=spec["steps"],
        max_time=spec["max_time"],
        seed=0,
        device="cpu",
        num_threads=spec["threads"],
        val_max_pairs=100,
        proto_pairs=32,
    )
    mcfg = ModelConfig(kind=spec["model"])
    t0 = time.perf_counter()
    res = train(data, tcfg, mcfg, spec["out"], force=True)
    row = res.history[0]
    return {
        "model": spec["model"],
        "threads": spec["threads"],
        "n_pairs": data.n_pairs,
        "steps": row["steps"],
        "partial": row["partial"],
        "train_pairs_per_s": row["train_pairs_per_s"],
        "epoch_seconds": row["seconds"],
        "total_seconds": time.perf_counter() - t0,
        "torch": torch.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--models", nargs="+", default=["prism", "crossattn"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--pairs", type=int, default=2_000)
    ap.add_argument("--anchors", type=int, default=600, help="enhancers (and promoters)")
    ap.add_argument("--steps", type=int, default=15, help="optimizer steps of the epoch")
    ap.add_argument("--max-time", type=float, default=60.0, help="seconds per run, at most")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(json.loads(args.child))))
        return
    if args.quick:
        args.pairs, args.anchors, args.steps, args.max_time = 400, 150, 2, 30.0
    work = Path(args.out or tempfile.mkdtemp(prefix="epcli-train-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    pairs = work / "train_pairs.bedpe"
    write_random_pairs(
        pairs, args.pairs, args.anchors, args.anchors, enh_len=(1000, 1000), cells=CELLS
    )
    print(
        f"CPU only; {args.pairs:,} pairs, 3 cells, windows 3000/2000 bp; 1 epoch of "
        f"{args.steps} steps (max {args.max_time:g} s); default TrainConfig otherwise"
    )
    for model in args.models:
        for threads in args.threads:
            spec = {
                "model": model,
                "threads": threads,
                "pairs": str(pairs),
                "steps": args.steps,
                "max_time": args.max_time,
                "out": str(work / f"{model}_{threads}"),
            }
            proc = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(spec)],
                capture_output=True, text=True,
            )  # fmt: skip
            if proc.returncode != 0:
                raise RuntimeError(f"child failed: {spec}\n{proc.stderr}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"{model:<10} {threads} thread(s)  {r['steps']:>3} steps"
                f"{' (partial)' if r['partial'] else ''}  "
                f"{r['train_pairs_per_s']:>8,.1f} pairs/s  "
                f"(epoch {r['epoch_seconds']:.1f} s incl. validation)",
                flush=True,
            )


if __name__ == "__main__":
    main()
