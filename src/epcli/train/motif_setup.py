"""The motif model's set-up: its motif set (loaded once, recorded in the config) and the sparse
full-batch warm start of U_I on the training windows, scanned once."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from epcli.core.arrays import PairData, log_distance
from epcli.core.schema import MOTIF_KINDS, saved_model_config
from epcli.model.motif_fit import warm_start
from epcli.model.motif_sites import SiteLayout, site_matrices
from epcli.motifs import load_motifs
from epcli.train.checkpoint import saved_configs
from epcli.train.config import Log


def motif_builder(mcfg, resume_dir: Path | None, log: Log, build_model):
    """Resolve a motif model's motif set and a model builder that loads it.

    For ``prism``, the motif set named by ``mcfg.motifs`` is loaded and its IDs, names, width
    and checksum go into the config (resuming takes them from the model directory instead);
    the returned builder initialises the PWM layer from it. Other kinds pass through.

    Returns
    -------
    mcfg : ModelConfig
    builder : callable ``(mcfg, seed) -> model``
    """
    if mcfg.kind not in MOTIF_KINDS:
        return mcfg, build_model
    if resume_dir is not None:  # the PWMs come back with the checkpoint's weights
        if mcfg.motif_ids is None:
            saved = saved_model_config(saved_configs(resume_dir).get("model") or {})
            keys = ("motif_ids", "motif_names", "motif_width", "motif_checksum", "sparsity")
            keys += ("motif_sites",)
            mcfg = dataclasses.replace(mcfg, **{k: saved[k] for k in keys if k in saved})
        return mcfg, build_model
    t0 = time.time()
    ms = load_motifs(mcfg.motifs)
    mcfg = dataclasses.replace(
        mcfg,
        motif_ids=ms.ids,
        motif_names=ms.names,
        motif_width=ms.max_length,
        motif_checksum=ms.checksum(),
    )
    src = ms.release or ms.path
    dt = time.time() - t0
    log(f"motifs: {len(ms)} matrices from {src} (checksum {ms.checksum()}, {dt:.1f} s)")
    if mcfg.motif_finetune:
        log(
            "WARNING: motif_finetune trains the PWM layer, so no scan can be reused: every "
            "window is rescanned at every step (about 200 times slower on 2 CPU cores in the "
            "learnability benchmark, for the same AUPR; docs/benchmarks.md). The default is "
            "frozen."
        )
    weights, lengths, _ = ms.log_odds_tensor()
    consensus = site_matrices(ms, SiteLayout(mcfg.motif_sites))

    def builder(cfg, seed=None):
        model = build_model(cfg, seed=seed)
        model.set_motifs(weights, lengths, consensus)
        return model

    return mcfg, builder


def prepare_motif_model(
    model, data: PairData, rows: np.ndarray, log: Log, adapt_rows: np.ndarray | None = None
) -> dict[str, Any]:
    """Scan the training windows once, then fit U_I full-batch (the sparse warm start).

    The penalty is chosen on the last 20% of each chromosome's training pairs by enhancer
    midpoint (a genome block inside the training rows; validation rows are never used).
    ``adapt_rows`` (labeled pairs of validation cells in the training region) are never
    fitted: the warm start adapts to those cells on them (supports outside the block,
    queries inside it) when it chooses how far a new cell's prototype may move, and their
    deviations join the final R_E prior (gates and motif prior scales).

    Returns
    -------
    dict
        The warm start's choices (for the model card).
    """
    t0 = time.time()
    rows = np.asarray(rows)
    extra = np.zeros(0, np.int64) if adapt_rows is None else np.asarray(adapt_rows)
    every = np.concatenate([rows, extra])
    ue, ei = np.unique(np.asarray(data.enh_idx)[every], return_inverse=True)
    up, pi = np.unique(np.asarray(data.pro_idx)[every], return_inverse=True)
    chrom = np.asarray(data.chrom)[every].astype(str)
    mid = np.asarray(data.enh_mid)[every]
    fitted = np.arange(every.size) < rows.size
    block = np.zeros(every.size, bool)
    for c in np.unique(chrom):
        m = chrom == c
        cut = np.quantile(mid[m & fitted], 0.8) if (m & fitted).any() else np.inf
        block[m] = mid[m] >= cut
    res = warm_start(
        model,
        data.enh_seqs[ue],
        data.pro_seqs[up],
        ei.reshape(-1),
        pi.reshape(-1),
        log_distance(np.asarray(data.distance)[every]),
        np.asarray(data.label)[every].astype(np.float32),
        np.asarray(data.cell_idx)[every],
        block,
        log=log,
        episode_only=~fitted,
    )
    n = ue.size + up.size
    log(
        f"scanned {n:,} training windows once and fitted U_I full-batch in "
        f"{time.time() - t0:.1f} s: L1 {res.sparsity:.3g}, {res.active_motifs} active motifs, "
        f"{res.interaction_pairs} E x P motif pairs"
    )
    return {
        "sparsity": res.sparsity,
        "path": res.path,
        "active_motifs": res.active_motifs,
        "interaction_pairs": res.interaction_pairs,
        "re_scale": res.re_scale,
        "re_prior": res.re_prior,
        "scales": res.scales,
    }
