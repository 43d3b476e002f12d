"""The model card: components and their measured contributions, validation, collapse check."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

import epcli
from epcli.core.arrays import PairData
from epcli.core.metrics import aupr, collapse_check, nanmean
from epcli.core.schema import PROTOTYPE_KINDS
from epcli.inference.engine import pair_features_unique, score_features, sigmoid
from epcli.model.encoder import reverse_complement
from epcli.model.motif_read import ablated, top_motifs
from epcli.train.config import Log, TrainConfig
from epcli.train.split import Split
from epcli.train.validate import (
    SetValidation,
    ValPlan,
    distance_auprs,
    primary_set,
    validate_torch,
)


def train_summary(data: PairData, split: Split) -> dict[str, Any]:
    """Training pairs, positives, prevalence and cells (the card's ``train`` record)."""
    y = np.asarray(data.label)[split.train_rows]
    return {
        "pairs": int(split.train_rows.size),
        "n_pos": int((y == 1).sum()),
        "prevalence": float((y == 1).mean()),
        "cells": split.train_cells,
    }


@dataclass
class CardInputs:
    """What the model card of a torch run is made from."""

    model: Any
    data: PairData
    split: Split
    cfg: TrainConfig
    mcfg: Any
    plans: dict[str, ValPlan]
    best_epoch: int
    best_value: float
    stopped: str
    epochs_run: int


def _zero_shot_aupr(model, sub: PairData, plan: ValPlan, y: np.ndarray, cfg, **kw) -> float:
    """Mean per-cell zero-shot AUPR of ``sub`` (features computed with ``kw``)."""
    feats = pair_features_unique(model, sub, batch_size=cfg.batch_size, **kw)
    logit = score_features(model, feats, None)["logit"]
    return nanmean(aupr(y[cp.idx], logit[cp.idx]) for cp in plan.cells)


def _re_variance_share(primary: SetValidation) -> float:
    """var(R_E) / (var(U_I) + var(R_E)) over the cells' adapted scores (NaN without)."""
    adapted = [d.adapted for d in primary.cells.values() if d.adapted is not None]
    if not adapted:
        return float("nan")
    u = np.concatenate([a["u_i"] for a in adapted])
    r = np.concatenate([a["r_e"] for a in adapted])
    denom = u.var() + r.var()
    return float(r.var() / denom) if denom > 0 else float("nan")


def _measured_components(ci: CardInputs, primary: SetValidation, plan: ValPlan) -> dict[str, Any]:
    """Each part's measured contribution on the primary validation set."""
    model, cfg, mcfg = ci.model, ci.cfg, ci.mcfg
    is_prism = cfg.model in PROTOTYPE_KINDS
    y = np.asarray(ci.data.label)[plan.rows]
    sub = ci.data.subset(plan.rows)
    aupr_no_distance = _zero_shot_aupr(model, sub, plan, y, cfg, zero_distance=True)
    comps: dict[str, Any] = {
        "distance": {
            "enabled": bool(mcfg.use_distance),
            "aupr_full": primary.aupr_zero_shot,
            "aupr_distance_zeroed": aupr_no_distance,
            "contribution": _diff(primary.aupr_zero_shot, aupr_no_distance),
        },
        "r_e": {
            "enabled": bool(is_prism and mcfg.use_re),
            "aupr_adapted": primary.aupr_adapted,
            "aupr_r_e_zeroed": primary.aupr_u_i,
            "contribution": _diff(primary.aupr_adapted, primary.aupr_u_i),
            "logit_variance_share": _re_variance_share(primary),
            "note": "R_E zeroed ranks pairs as U_I alone; share = var(R_E) / (var(U_I) + "
            "var(R_E)) with adapted prototypes",
        },
        "prototypes": {
            "enabled": bool(is_prism and mcfg.use_re),
            "aupr_zero_shot": primary.aupr_zero_shot_rest,
            "aupr_adapted": primary.aupr_adapted,
            "contribution": _diff(primary.aupr_adapted, primary.aupr_zero_shot_rest),
            "note": f"adapted = prototype from {cfg.support_size} labeled pairs of the cell; "
            "both AUPRs on the cell's pairs outside that support set"
            + (
                "; the R_E prior also read the validation cells' pairs in the training region"
                if cfg.model == "prism"
                else ""
            ),
        },
        "aux_ui_loss": {
            "enabled": cfg.loss_aux_ui > 0,
            "weight": cfg.loss_aux_ui,
            "aupr_u_i_alone": primary.aupr_u_i,
        },
        "hsic": {
            "enabled": cfg.loss_hsic > 0,
            "weight": cfg.loss_hsic,
            "hsic_validation": primary.hsic,
        },
    }
    # RC consistency: score reverse-complemented anchors
    rc = dataclasses.replace(
        sub, enh_seqs=reverse_complement(sub.enh_seqs), pro_seqs=reverse_complement(sub.pro_seqs)
    )
    rcf = pair_features_unique(model, rc, batch_size=cfg.batch_size)
    rc_logit = score_features(model, rcf, None)["logit"]
    comps["rc_augmentation"] = {
        "enabled": bool(cfg.rc_aug),
        "aupr_forward": primary.aupr_zero_shot,
        "aupr_reverse_complement": nanmean(aupr(y[cp.idx], rc_logit[cp.idx]) for cp in plan.cells),
        "mean_abs_logit_change": float(np.mean(np.abs(rc_logit - primary.zero_shot["logit"]))),
    }
    if hasattr(model, "scanner"):
        comps.update(motif_components(model, sub, y, plan, primary, cfg, mcfg))
    return comps


def _fixed_components(ci: CardInputs) -> dict[str, Any]:
    """Parts fixed by the architecture or the training run (not measurable after it)."""
    is_prism = ci.cfg.model in PROTOTYPE_KINDS
    return {
        "rope": {
            "enabled": bool(is_prism and ci.mcfg.use_rope and not hasattr(ci.model, "scanner")),
            "contribution": None,
            "note": "fixed by the architecture; measuring it needs a model trained without it",
        },
        "ranking_loss": {
            "enabled": ci.cfg.loss_rank > 0,
            "weight": ci.cfg.loss_rank,
            "contribution": None,
            "note": "a training-time term; measuring it needs a run without it",
        },
    }


def model_card(ci: CardInputs, log: Log) -> dict[str, Any]:
    """Components, measured contributions, validation and the collapse check of a torch
    model (the kept weights loaded, population prototype set)."""
    model, data, cfg = ci.model, ci.data, ci.cfg
    val = validate_torch(model, data, ci.plans, cfg, detail=True)
    dist = distance_auprs(data, ci.split, cfg, ci.plans)
    primary_name = primary_set(val)
    comps: dict[str, Any] = {}
    collapse = collapse_check(np.zeros(0))
    if primary_name is not None:
        primary, plan = val[primary_name], ci.plans[primary_name]
        comps = _measured_components(ci, primary, plan)
        y = np.asarray(data.label)[plan.rows]
        collapse = collapse_check(sigmoid(primary.zero_shot["logit"]), y)
    if hasattr(model, "scanner"):
        comps.pop("rc_augmentation", None)  # scans are strand-symmetric by construction
    comps.update(_fixed_components(ci))
    if collapse.collapsed:
        log("WARNING: MODEL COLLAPSED: " + "; ".join(collapse.reasons))
    for name, v in val.items():
        v.distance_aupr = dist[name]["mean"]
        for c, d in v.cells.items():
            d.distance_aupr = dist[name]["cells"].get(c)
    extra: dict[str, Any] = {}
    if hasattr(model, "scanner"):
        extra["motif_set"] = motif_set_card(ci.mcfg)
        extra["top_motifs"] = top_motifs(model, 20)
    return {
        "model_kind": cfg.model,
        "epcli_version": epcli.__version__,
        **extra,
        "components": comps,
        "validation": {name: v.to_dict() for name, v in val.items()},
        "temperature": float(model.temperature().detach().float().cpu()),
        "early_stopping": {
            "set": " + ".join(val) if primary_name is not None else None,
            "metric": "mean zero-shot AUPR over the cells of every validation set",
            "best_epoch": ci.best_epoch,
            "best_value": ci.best_value if np.isfinite(ci.best_value) else None,
            "stopped": ci.stopped,
            "epochs_run": ci.epochs_run,
            "patience": cfg.patience,
        },
        "train": train_summary(data, ci.split),
        "collapse": collapse.to_dict(),
        "collapsed": collapse.collapsed,
        "split": ci.split.to_dict(),
    }


def motif_set_card(mcfg) -> dict[str, Any]:
    """The motif set of a motif model as the card records it."""
    return {
        "spec": mcfg.motifs,
        "n_motifs": len(mcfg.motif_ids or []),
        "checksum": mcfg.motif_checksum,
        "ids": list(mcfg.motif_ids or []),
        "names": list(mcfg.motif_names or []),
    }


def motif_components(model, sub: PairData, y, plan, primary, cfg, mcfg) -> dict[str, Any]:
    """Measured contribution of each part of the motif model (zero-shot AUPR without it)."""

    def zs_aupr() -> float:
        f = pair_features_unique(model, sub, batch_size=cfg.batch_size)
        logit = score_features(model, f, None)["logit"]
        return nanmean(aupr(y[cp.idx], logit[cp.idx]) for cp in plan.cells)

    full = primary.aupr_zero_shot
    out: dict[str, Any] = {}
    parts = {
        "enhancer_motifs": True,
        "promoter_motifs": True,
        "interaction": mcfg.use_interaction,
        "free_filters": mcfg.n_free_filters > 0,
    }
    for part, enabled in parts.items():
        entry: dict[str, Any] = {"enabled": bool(enabled), "aupr_full": full}
        if enabled:
            with ablated(model, part):
                a = zs_aupr()
            entry.update({"aupr_without": a, "contribution": _diff(full, a)})
        out[part] = entry
    active = int(model.active_motifs().numel())
    out["sparsity"] = {
        "enabled": mcfg.sparsity > 0,
        "l1_weight": mcfg.sparsity,
        "active_motifs": active,
        "of_motifs": int(model.scanner.n_motifs),
        "note": "motifs with a non-zero weight, interaction factor or R_E gate; the others "
        "are not scanned at prediction",
    }
    out["motif_prior"] = {
        "enabled": bool(mcfg.use_motif_prior),
        "finetuned": bool(mcfg.motif_finetune),
        "contribution": None,
        "note": "PWM layer initialised from the motif set; measuring it needs a run without "
        "it (use_motif_prior=false), see docs/benchmarks.md",
    }
    return out


def _diff(a: float, b: float) -> float | None:
    """a - b, or None when not finite."""
    d = a - b
    return float(d) if np.isfinite(d) else None
