"""Benchmark `epcli predict` (scoring BEDPE pairs) on the real hg38 piece.

Measures, each in a fresh process on ``--threads`` torch threads (default 2):
- pairs/s end to end through the library path of the CLI (``PairsInput`` + ``score_to_bedpe``
  writing a BEDPE file; parse, window fetch, scoring, write; model loading included) for
  (a) a default-config ``prism`` model (random init weights) with the anchor-token cache,
  (b) the same model WITHOUT the cache: both windows of every pair encoded (``model.forward``
  on batches of pairs, same batch size), and (c) the bundled distance prior (no genome);
- with ``--reuse-sweep``: pairs/s of the prism model at 1, 10 and 50 pairs per unique anchor
  (pairs in random order, ``--sweep-chunk`` pairs per chunk), before (each chunk encodes its
  own unique anchors) and after the cross-chunk anchor cache (``--cache-mb``);
- peak resident memory (``ru_maxrss`` of the child) of the distance prior at two sizes
  (default 100k and 1M pairs, chunk size 100k) and of prism at two sizes with a smaller
  chunk size (default 20k and 100k pairs, chunk 20k).

Pairs are random cis pairs on chr20:70,000-2,990,000 over a fixed pool of anchors (default
1,000 enhancers + 1,000 promoters), so at 20k pairs each anchor is reused ~10 times.

Usage: python benchmarks/predict_bench.py [--quick] [--pairs 20000] [--threads 2] [--out DIR]
       python benchmarks/predict_bench.py --reuse-sweep [--sweep-chunk 5000]
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

import numpy as np

from bench_pairs import GENOME, write_random_pairs, write_reuse_pairs

WINDOWS = {"enhancer": 3000, "promoter": 2000}


#: Motifs a benchmark motif model uses: the trained prism of the ground-truth benchmark kept
#: 64 of the 879 (docs/benchmarks.md); only those are scanned at prediction.
ACTIVE_MOTIFS = 64


def make_prism_dir(path: Path, seed: int = 0, active: int = ACTIVE_MOTIFS) -> str:
    """Write a default prism model directory (the motif model, JASPAR 2024) with random
    weights on ``active`` seeded random motifs (the others exactly 0, as after training).

    The population prototype is a seeded random (2, env_dim) array so that R_E is not
    identically 0. Returns the model fingerprint.
    """
    import dataclasses

    import torch

    from epcli.io.modeldir import save_model_dir
    from epcli.model.config import ModelConfig
    from epcli.model.motif_sites import VIEWS, site_matrices
    from epcli.model.registry import build_model
    from epcli.motifs import load_motifs
    from epcli.train import TrainConfig

    ms = load_motifs()
    cfg = dataclasses.replace(
        ModelConfig(),
        motif_ids=ms.ids,
        motif_names=ms.names,
        motif_width=ms.max_length,
        motif_checksum=ms.checksum(),
    )
    model = build_model(cfg, seed=seed)
    w, lengths, _ = ms.log_odds_tensor()
    model.set_motifs(w, lengths, site_matrices(ms))
    rng = np.random.default_rng(seed)
    on = torch.zeros(model.env_dim, dtype=torch.bool)
    chosen = rng.choice(len(ms), size=min(active, len(ms)), replace=False)
    on[(chosen[:, None] * VIEWS + np.arange(VIEWS)).ravel()] = True  # every view of a motif
    on[len(ms) * VIEWS :] = True  # the free filters
    with torch.no_grad():
        for p in (model.w_e, model.w_p, model.gate):
            p.copy_(torch.as_tensor(rng.normal(size=p.shape), dtype=torch.float32).abs() * on)
        for p in (model.u, model.v):
            p.copy_(torch.as_tensor(rng.normal(size=p.shape), dtype=torch.float32) * on)
    model.set_population_prototype(rng.normal(size=(2, model.env_dim)).astype(np.float32))
    return save_model_dir(
        path,
        kind="prism",
        model_config=cfg.to_dict(),
        train_config=TrainConfig().to_dict(),
        windows=WINDOWS,
        model_card={"note": "random init weights, for benchmarking only"},
        history=[],
        state_dict=model.state_dict(),
        force=True,
    )


def _naive_score(pred, source, out, chunk_size: int, batch_size: int) -> int:
    """Score without the anchor cache: both windows of every pair go through the encoder."""
    import torch

    from epcli.core import schema
    from epcli.core.arrays import log_distance
    from epcli.inference.engine import sigmoid
    from epcli.io.bedpe import write_bedpe_rows

    model = pred.model
    n_done = 0
    columns = None
    with torch.inference_mode():
        for frame, data in source.chunks(chunk_size=chunk_size):
            if columns is None:
                columns = source.layout(frame).output_columns + list(schema.PREDICT_EXTRA)
            n = data.n_pairs
            ld = log_distance(data.distance)
            res = {k: np.empty(n, np.float64) for k in ("logit", "u_i", "r_e")}
            for a in range(0, n, batch_size):
                rows = np.arange(a, min(a + batch_size, n))
                o = model(
                    torch.from_numpy(data.enh_seqs[data.enh_idx[rows]]),
                    torch.from_numpy(data.pro_seqs[data.pro_idx[rows]]),
                    torch.from_numpy(ld[rows]),
                )
                for k in res:
                    res[k][rows] = o[k].double().numpy()
            frame = frame.copy()
            frame["score"] = sigmoid(res["logit"])
            for k in schema.PREDICT_EXTRA:
                frame[k] = res[k]
            write_bedpe_rows(out, frame, columns, header=n_done == 0)
            n_done += n
    return n_done


def run_one(spec: dict) -> dict:
    """Run one measurement in this process; return timing and peak memory."""
    threads = None
    if spec["mode"] != "distance":  # the distance prior never imports torch
        import torch

        torch.set_num_threads(spec["threads"])
        threads = torch.get_num_threads()
    from epcli.inference.predictor import Predictor
    from epcli.io.source import PairsInput
    from epcli.predict import score_to_bedpe

    t0 = time.perf_counter()
    pred = Predictor.load(spec["model"], device="cpu")
    if spec.get("cache_mb"):
        from epcli.inference.cache import WindowCache

        pred.window_cache = WindowCache(spec["cache_mb"] * 1024**2)
    src = PairsInput(
        spec["pairs"],
        GENOME if pred.kind != "distance" else None,
        pred.windows,
        needs_sequence=pred.kind != "distance",
    )
    try:
        with open(spec["out"], "w") as fh:
            if spec["mode"] == "naive":
                n = _naive_score(pred, src, fh, spec["chunk_size"], spec["batch_size"])
            else:
                n = score_to_bedpe(
                    pred, src, fh, chunk_size=spec["chunk_size"], batch_size=spec["batch_size"]
                ).n
    finally:
        src.close()
    dt = time.perf_counter() - t0
    cache = pred.window_cache
    return {
        "encoded_windows": None if cache is None else cache.stats.computed,
        "n_pairs": n,
        "seconds": dt,
        "pairs_per_s": n / dt,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": threads,
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
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--pairs", type=int, default=20_000, help="pairs of the speed runs")
    ap.add_argument("--anchors", type=int, default=1_000, help="enhancers (and promoters)")
    ap.add_argument(
        "--naive-pairs",
        type=int,
        default=5_000,
        help="pairs of the no-cache run (its cost per pair does not depend on reuse)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--mem-distance", type=int, nargs=2, default=[100_000, 1_000_000])
    ap.add_argument("--mem-prism", type=int, nargs=2, default=[20_000, 100_000])
    ap.add_argument("--prism-chunk", type=int, default=20_000)
    ap.add_argument("--skip-prism-mem", action="store_true", help="no prism memory runs")
    ap.add_argument("--skip-mem", action="store_true", help="speed runs only")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--reuse-sweep", action="store_true", help="only the reuse 1/10/50 sweep")
    ap.add_argument(
        "--sweep-pairs",
        type=int,
        nargs=3,
        default=[3_000, 20_000, 50_000],
        help="pairs at reuse 1, 10 and 50",
    )
    ap.add_argument("--sweep-chunk", type=int, default=5_000, help="pairs per chunk (sweep)")
    ap.add_argument("--cache-mb", type=int, default=512, help="cross-chunk cache budget")
    ap.add_argument(
        "--model",
        type=Path,
        default=None,
        help="sweep: a trained prism model directory (default: random weights on "
        f"{ACTIVE_MOTIFS} motifs, every view)",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(json.loads(args.child))))
        return
    if args.reuse_sweep:
        reuse_sweep(args)
        return
    if args.quick:
        args.pairs, args.anchors, args.naive_pairs = 2_000, 100, 500
        args.mem_distance, args.mem_prism, args.prism_chunk = (
            [10_000, 50_000],
            [1_000, 4_000],
            1_000,
        )
    work = Path(args.out or tempfile.mkdtemp(prefix="epcli-predict-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    from epcli.io.modeldir import bundled_default_dir

    prism_dir = work / "prism_model"
    make_prism_dir(prism_dir)
    distance_dir = bundled_default_dir()

    def pairs_file(n: int) -> Path:
        p = work / f"pairs_{n}.bedpe"
        if not p.exists():
            write_random_pairs(p, n, args.anchors, args.anchors)
        return p

    def spec(model: Path, n: int, mode: str, chunk: int = 100_000) -> dict:
        return {
            "model": str(model),
            "pairs": str(pairs_file(n)),
            "out": str(work / f"scored_{mode}_{n}.bedpe"),
            "mode": mode,
            "chunk_size": chunk,
            "batch_size": args.batch_size,
            "threads": args.threads,
        }

    print(
        f"{args.threads} torch thread(s); anchors {args.anchors:,} enhancers + "
        f"{args.anchors:,} promoters; batch size {args.batch_size}; library path "
        "(PairsInput + score_to_bedpe -> BEDPE file)"
    )
    rows: list[tuple[str, dict]] = []

    def show(name: str, r: dict) -> None:
        rows.append((name, r))
        print(
            f"{name:<34} {r['n_pairs']:>9,} pairs {r['seconds']:8.2f} s "
            f"{r['pairs_per_s']:>10,.0f} pairs/s  peak {r['peak_rss_mib']:6.0f} MiB",
            flush=True,
        )

    cached = child(spec(prism_dir, args.pairs, "cached"))
    show("prism, anchor cache", cached)
    naive = child(spec(prism_dir, args.naive_pairs, "naive"))
    show("prism, no cache (per-pair encode)", naive)
    dist = child(spec(distance_dir, args.pairs, "distance"))
    show("distance prior (bundled)", dist)
    speedup = cached["pairs_per_s"] / naive["pairs_per_s"]
    reuse = 2 * args.pairs / (2 * args.anchors)
    print(f"cache speed-up: {speedup:.1f}x at ~{reuse:.0f}x anchor reuse (target >= 10x)")
    print(f"distance prior: {dist['pairs_per_s']:,.0f} pairs/s (target >= 5,000)")

    if args.skip_mem:
        return
    mem = []
    for n in args.mem_distance:
        r = child(spec(distance_dir, n, "distance"))
        show("distance prior, chunk 100,000", r)
        mem.append(r)
    ratio = mem[1]["peak_rss_mib"] / mem[0]["peak_rss_mib"]
    print(
        f"distance prior peak memory {args.mem_distance[1]:,} vs {args.mem_distance[0]:,} "
        f"pairs: {ratio:.2f}x (target <= 1.5x)"
    )
    if not args.skip_prism_mem:
        memp = []
        for n in args.mem_prism:
            r = child(spec(prism_dir, n, "cached", args.prism_chunk))
            show(f"prism, cache, chunk {args.prism_chunk:,}", r)
            memp.append(r)
        ratio = memp[1]["peak_rss_mib"] / memp[0]["peak_rss_mib"]
        print(
            f"prism peak memory {args.mem_prism[1]:,} vs {args.mem_prism[0]:,} pairs: {ratio:.2f}x"
        )


def per_chunk_windows(pairs: Path, chunk: int) -> int:
    """Windows a per-chunk encoder computes: the unique enhancers + promoters of each chunk."""
    import pandas as pd

    df = pd.read_csv(pairs, sep="\t", comment="#", header=None, usecols=[1, 2, 4, 5])
    n = 0
    for a in range(0, len(df), chunk):
        part = df.iloc[a : a + chunk]
        n += len(part[[1, 2]].drop_duplicates()) + len(part[[4, 5]].drop_duplicates())
    return n


def describe_scans(model_dir: Path) -> str:
    """Matrices and scans a model's prediction runs per anchor side (its scan plans)."""
    from epcli.inference.predictor import Predictor

    model = Predictor.load(model_dir, device="cpu").model
    model.eval()
    parts = [f"model {model_dir}: {int(model.active_motifs().numel())} active matrices"]
    for side in ("enhancer", "promoter"):
        plan = model.side_plan(side)
        if plan is None:
            parts.append(f"{side}: every scan")
        else:
            counts = ", ".join(str(int(c)) for c in plan.sum(0))
            parts.append(f"{side}: {int(plan.any(1).sum())} matrices (scans per kind {counts})")
    return "; ".join(parts)


def reuse_sweep(args) -> None:
    """Prism pairs/s at 1, 10 and 50 pairs per unique anchor, before and after the cache."""
    import os

    work = Path(args.out or tempfile.mkdtemp(prefix="epcli-reuse-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    prism_dir = work / "prism_model"
    if args.model is None:
        make_prism_dir(prism_dir)
    else:
        prism_dir = args.model
    print(describe_scans(prism_dir))
    print(
        f"{args.threads} torch thread(s), batch size {args.batch_size}, chunk size "
        f"{args.sweep_chunk:,} pairs, pairs in random order; cache budget {args.cache_mb} MiB; "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    print(
        "| pairs per unique anchor | pairs | anchors per side | before: pairs/s (windows "
        "encoded) | after: pairs/s (windows encoded) | speed-up |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for reuse, n in zip((1, 10, 50), args.sweep_pairs, strict=True):
        pairs = work / f"reuse_{reuse}.bedpe"
        n_anchor = write_reuse_pairs(pairs, n, reuse)
        res = {}
        for name, cache_mb in (("before", 0), ("after", args.cache_mb)):
            spec = {
                "model": str(prism_dir),
                "pairs": str(pairs),
                "out": str(work / f"scored_{reuse}_{name}.bedpe"),
                "mode": "cached",
                "chunk_size": args.sweep_chunk,
                "batch_size": args.batch_size,
                "threads": args.threads,
                "cache_mb": cache_mb,
            }
            res[name] = child(spec)
        b, a = res["before"], res["after"]
        a_enc = a["encoded_windows"]
        b_enc = per_chunk_windows(pairs, args.sweep_chunk)
        print(
            f"| {reuse} | {n:,} | {n_anchor:,} | {b['pairs_per_s']:,.0f} ({b_enc:,}) | "
            f"{a['pairs_per_s']:,.0f} ({a_enc:,}) | {a['pairs_per_s'] / b['pairs_per_s']:.2f}x |",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
