"""Fit a scikit-learn baseline (motif-lr, kmer, distance) and write its model directory."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import epcli
from epcli.core.arrays import PairData
from epcli.core.metrics import aupr, collapse_check, nanmean
from epcli.inference.engine import sigmoid
from epcli.io.modeldir import save_model_dir
from epcli.model.baselines import DistanceBaseline, KmerBaseline
from epcli.model.motif_lr import MotifLRBaseline
from epcli.motifs import load_motifs
from epcli.train.card import train_summary
from epcli.train.config import Log, TrainConfig
from epcli.train.result import RunTarget, TrainResult
from epcli.train.split import Split
from epcli.train.validate import (
    CellValidation,
    SetValidation,
    ValPlan,
    distance_auprs,
    fmt3,
    log_validation_summary,
    plan_validation,
    primary_set,
)


def make_baseline(cfg: TrainConfig, mcfg: Any):
    """The unfitted scikit-learn baseline of ``cfg.model`` (motif-lr reads its motif set)."""
    if cfg.model == "motif-lr":
        spec = getattr(mcfg, "motifs", None) or (mcfg or {}).get("motifs", "jaspar2024")
        return MotifLRBaseline(load_motifs(spec), seed=cfg.seed)
    if cfg.model == "kmer":
        return KmerBaseline(k=cfg.kmer_k, seed=cfg.seed)
    return DistanceBaseline(seed=cfg.seed)


def validate_baseline(
    base, data: PairData, split: Split, cfg: TrainConfig, plans: dict[str, ValPlan]
) -> tuple[dict[str, SetValidation], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per set and cell, the baseline's AUPR beside distance's; and each set's (prob, y)."""
    dist = distance_auprs(data, split, cfg, plans)
    label = np.asarray(data.label)
    val: dict[str, SetValidation] = {}
    probs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, plan in plans.items():
        logit = base.logit(data, rows=plan.rows)
        y = label[plan.rows]
        cells = {
            cp.name: CellValidation(
                n=int(cp.idx.size),
                n_pos=int((y[cp.idx] == 1).sum()),
                prevalence=float((y[cp.idx] == 1).mean()),
                aupr_zero_shot=aupr(y[cp.idx], logit[cp.idx]),
                aupr_adapted=None,
                distance_aupr=dist[name]["cells"][cp.name],
            )
            for cp in plan.cells
        }
        val[name] = SetValidation(
            cells=cells,
            aupr_zero_shot=nanmean(c.aupr_zero_shot for c in cells.values()),
            aupr_adapted=None,
            prevalence=float((y == 1).mean()),
            n=int(plan.rows.size),
            distance_aupr=dist[name]["mean"],
        )
        probs[name] = (sigmoid(logit), y)
    return val, probs


def baseline_card(base, cfg: TrainConfig, data, split, val, primary, score, collapse) -> dict:
    """The model card of a scikit-learn baseline."""
    card = {
        "model_kind": cfg.model,
        "epcli_version": epcli.__version__,
        "components": {
            "distance": {"enabled": True},
            "kmer_counts": {"enabled": cfg.model == "kmer", "k": cfg.kmer_k},
            "motif_scores": {"enabled": cfg.model == "motif-lr"},
        },
        "validation": {name: v.to_dict(torch_model=False) for name, v in val.items()},
        "early_stopping": {"set": primary, "metric": "mean zero-shot AUPR", "best_value": score},
        "train": train_summary(data, split),
        "collapse": collapse.to_dict(),
        "collapsed": collapse.collapsed,
        "split": split.to_dict(),
    }
    if cfg.model == "motif-lr":
        card["motif_set"] = {
            k: v for k, v in base.motifs.describe().items() if k not in ("ids", "names")
        }
        card["top_motifs"] = base.top_terms(20)
        card["C"] = base.C_
    return card


def train_sklearn(
    data: PairData, cfg: TrainConfig, split: Split, target: RunTarget, log: Log, mcfg: Any
) -> TrainResult:
    """Fit the baseline on the training rows, validate it, write its model directory."""
    t0 = time.time()
    base = make_baseline(cfg, mcfg)
    log(f"fitting the {cfg.model} baseline on {split.train_rows.size} training pairs")
    base.fit(data, rows=split.train_rows)
    val, probs = validate_baseline(base, data, split, cfg, plan_validation(data, split, cfg))
    primary = primary_set(val)
    score = val[primary].aupr_zero_shot if primary else float("nan")
    prob, yp = probs[primary] if primary else (np.zeros(0), None)
    collapse = collapse_check(prob, yp)
    if collapse.collapsed:
        log("WARNING: MODEL COLLAPSED: " + "; ".join(collapse.reasons))
    row: dict[str, Any] = {"epoch": 1, "seconds": round(time.time() - t0, 3)}
    for name, v in val.items():
        row[f"{name}_zero_shot"] = v.aupr_zero_shot
    log(
        f"{cfg.model} baseline: "
        + ", ".join(f"{k} AUPR {fmt3(v.aupr_zero_shot)}" for k, v in val.items())
    )
    card = baseline_card(base, cfg, data, split, val, primary, score, collapse)
    fp = save_model_dir(
        target.out,
        kind=cfg.model,
        model_config=None,
        train_config=cfg.to_dict(),
        windows=target.windows,
        model_card=card,
        history=[row],
        params=base.to_json(),
        data_files=target.data_files,
        split=split.to_dict(),
        force=target.force,
    )
    card["fingerprint"] = fp
    log_validation_summary(card["validation"], log, prototypes=False)
    log(f"wrote {target.out} (fingerprint {fp})")
    return TrainResult(target.out, fp, 1, score, 1, "epochs", [row], card, split)
