"""The motif model's set-up: its motif set (loaded once, recorded in the config) and the sparse
full-batch warm start of U_I on the training windows, scanned once."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from epcli.core.arrays import PairData, log_distance
from epcli.core.schema import AUTO_SITE_CHOICES, MOTIF_KINDS, saved_model_config
from epcli.model.motif_fit import penalty_path, warm_start
from epcli.model.motif_read import model_feature_names
from epcli.model.motif_sites import SiteLayout, site_matrices
from epcli.motifs import load_motifs
from epcli.train.checkpoint import saved_configs
from epcli.train.config import Log

#: A site set after the first of AUTO_SITE_CHOICES is kept only when its best held-out block
#: AUPR beats the first's by more than this: each matrix's 13 features instead of 8 overfit
#: a few hundred windows (on the bundled example the richer set scored 0.499 against 0.514
#: on the block, and an unseen cell lost 0.054 adapted AUPR with it), so the simpler set wins
#: ties and near-ties, as the penalty path keeps the sparsest fit within SPARSE_TOL.
SITE_MARGIN = 0.01


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
    consensus: dict[tuple, Any] = {}  # per set of consensus site models, built once

    def builder(cfg, seed=None):
        model = build_model(cfg, seed=seed)
        layout = SiteLayout(model.cfg.motif_sites)  # "auto" resolved
        if layout.models not in consensus:
            consensus[layout.models] = site_matrices(ms, layout)
        model.set_motifs(weights, lengths, consensus[layout.models], ms.background)
        return model

    return mcfg, builder


def prepare_motif_model(
    model,
    data: PairData,
    rows: np.ndarray,
    log: Log,
    adapt_rows: np.ndarray | None = None,
    builder=None,
    seed: int | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Scan the training windows once, then fit U_I full-batch (the sparse warm start).

    The penalty is chosen on the last 20% of each chromosome's training pairs by enhancer
    midpoint (a genome block inside the training rows; validation rows are never used).
    ``adapt_rows`` (labeled pairs of validation cells in the training region) are never
    fitted: the warm start adapts to those cells on them (supports outside the block,
    queries inside it) when it chooses how far a new cell's prototype may move, and their
    deviations join the final R_E prior (gates and motif prior scales).

    With a ``builder`` (given when the config's ``motif_sites`` is ``auto``), the
    penalty path is fitted for a model of each site set of
    :data:`~epcli.core.schema.AUTO_SITE_CHOICES`, and the set whose best held-out block
    AUPR is highest is kept (the first unless another beats it by more than
    :data:`SITE_MARGIN`).

    Returns
    -------
    model
        The warm-started model (``model`` itself, or the chosen site set's).
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
    args = (
        data.enh_seqs[ue],
        data.pro_seqs[up],
        ei.reshape(-1),
        pi.reshape(-1),
        log_distance(np.asarray(data.distance)[every]),
        np.asarray(data.label)[every].astype(np.float32),
    )
    model, pre, sites = _choose_sites(model, args, block, ~fitted, log, builder, seed)
    res = warm_start(
        model,
        *args,
        np.asarray(data.cell_idx)[every],
        block,
        log=log,
        episode_only=~fitted,
        pre=pre,
    )
    n = ue.size + up.size
    log(
        f"scanned {n:,} training windows once and fitted U_I full-batch in "
        f"{time.time() - t0:.1f} s: L1 {res.sparsity:.3g}, {res.active_motifs} active motifs, "
        f"{res.interaction_pairs} E x P motif pairs"
    )
    warm = {
        "sparsity": res.sparsity,
        "path": res.path,
        "active_motifs": res.active_motifs,
        "interaction_pairs": res.interaction_pairs,
        "re_scale": res.re_scale,
        "re_prior": res.re_prior,
        "scales": res.scales,
    }
    ids, names = model.cfg.motif_ids or [], model.cfg.motif_names or []
    if res.levels:
        views = model_feature_names(model)[0]  # a swapped view by its feature id
        warm["levels_refined"] = [
            {"id": ids[r["motif"]], "name": names[r["motif"]], **r}
            | ({"in_place_of": views[r["in_place_of"]]} if "in_place_of" in r else {})
            for r in res.levels
        ]
    if res.consensus:
        warm["consensus_edited"] = [
            {"id": ids[r["motif"]], "name": names[r["motif"]], **r} for r in res.consensus
        ]
    if sites:
        warm["site_sets"] = sites
    return model, warm


def _choose_sites(model, args, block, episode_only, log: Log, builder, seed):
    """The model whose site set the warm start keeps, its :class:`PathFit` (None: not yet
    fitted) and each set's best held-out block AUPR ({} without a choice)."""
    if builder is None:
        return model, None, {}
    device = next(model.parameters()).device
    fits = []
    for i, sites in enumerate(AUTO_SITE_CHOICES):
        # the other sets' models and paths leave the random state as it was, so that training
        # that keeps the first set is the run a config naming that set makes
        keep_rng = torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
        with keep_rng if i else contextlib.nullcontext():
            cand, stats = model, None
            if i:
                cand = builder(dataclasses.replace(model.cfg, motif_sites=sites), seed)
                cand = cand.to(device)
                cand.prune_scan = model.prune_scan
                # the consensus counts are the first set's: only the log-odds scan runs
                first = fits[0][2]
                layout = model.scanner.layout
                stats = (
                    cand.rescan_levels(args[0], first.se, layout),
                    cand.rescan_levels(args[1], first.sp, layout),
                )
            log(f"warm start: site set {sites}")
            pre = penalty_path(cand, *args, block, log, episode_only, stats=stats)
        if not pre.path:  # no held-out block to compare on: the first set
            return model, None, {}
        fits.append((sites, cand, pre))
    best = {s: round(p.best_aupr, 4) for s, _, p in fits}
    keep = 0
    for i in range(1, len(fits)):
        if fits[i][2].best_aupr > fits[keep][2].best_aupr + SITE_MARGIN:
            keep = i
    log(
        "warm start: site sets' best held-out block AUPR: "
        + ", ".join(f"{s} {a:.3f}" for s, a in best.items())
        + f"; kept {fits[keep][0]}"
    )
    return fits[keep][1], fits[keep][2], {"best_heldout_aupr": best, "kept": fits[keep][0]}
