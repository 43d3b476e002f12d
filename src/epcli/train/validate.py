"""Validation: fixed seeded subsets, zero-shot and adapted AUPR per cell, the distance baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from epcli.core.arrays import PairData
from epcli.core.metrics import aupr, nanmean
from epcli.core.sampling import stratified_pick
from epcli.inference.engine import make_prototype_np, pair_features_unique, score_features
from epcli.model.losses import hsic
from epcli.train.config import VAL_CELLS, VAL_REGION, Log, TrainConfig
from epcli.train.split import Split, cell_name


def fmt3(x: float | None) -> str:
    """A metric with three decimals, ``NA`` when missing or not finite."""
    return "NA" if x is None or not np.isfinite(x) else f"{x:.3f}"


@dataclass
class CellPlan:
    """One cell of a validation set: its positions in the set's rows, and the support pairs
    (and the rest) of its adapted prototype; None when the cell cannot form a support set."""

    name: str
    idx: np.ndarray  # positions within the set's (capped) rows
    support: np.ndarray | None  # positions (subset of idx) for the adapted prototype
    rest: np.ndarray | None


@dataclass
class ValPlan:
    """A validation set's fixed (seeded, capped) rows and its cells' plans."""

    rows: np.ndarray
    cells: list[CellPlan]


def plan_validation(data: PairData, split: Split, cfg: TrainConfig) -> dict[str, ValPlan]:
    """Fixed (seeded) validation subsets and adapted-support picks, made once."""
    plans: dict[str, ValPlan] = {}
    label = np.asarray(data.label)
    cells_all = np.asarray(data.cell_idx)
    for name, rows in split.val_rows.items():
        if rows.size == 0:
            continue
        rng = np.random.default_rng([cfg.seed, 3, len(plans)])
        keep = []
        for c in np.unique(cells_all[rows]):
            rc = rows[cells_all[rows] == c]
            if rc.size > cfg.val_max_pairs:
                rc = np.sort(rng.choice(rc, size=cfg.val_max_pairs, replace=False))
            keep.append(rc)
        sel = np.sort(np.concatenate(keep))
        cplans = []
        y = label[sel]
        for c in np.unique(cells_all[sel]):
            idx = np.flatnonzero(cells_all[sel] == c)
            pos, neg = idx[y[idx] == 1], idx[y[idx] == 0]
            support = rest = None
            k = cfg.support_size
            if pos.size >= 2 and neg.size >= 2 and idx.size >= k + 2:
                sp, sn = stratified_pick(rng, pos, neg, k)
                support = np.sort(np.concatenate([sp, sn]))
                rest = np.setdiff1d(idx, support)
                yr = y[rest]
                if yr.min() == yr.max():
                    support = rest = None
            cplans.append(CellPlan(cell_name(data, int(c)), idx, support, rest))
        plans[name] = ValPlan(sel, cplans)
    return plans


def prototype_rows(data: PairData, rows: np.ndarray, cfg: TrainConfig) -> dict[int, np.ndarray]:
    """Per training cell, the (seeded, stratified) rows used for its prototype."""
    rng = np.random.default_rng([cfg.seed, 4])
    label = np.asarray(data.label)
    cells = np.asarray(data.cell_idx)[rows]
    out = {}
    for c in np.unique(cells):
        rc = rows[cells == c]
        if rc.size > cfg.proto_pairs:
            sp, sn = stratified_pick(rng, rc[label[rc] == 1], rc[label[rc] == 0], cfg.proto_pairs)
            rc = np.sort(np.concatenate([sp, sn]))
        out[int(c)] = rc
    return out


def compute_cell_prototypes(
    model, data: PairData, proto_rows: dict[int, np.ndarray], batch_size: int
) -> dict[int, np.ndarray]:
    """Prototype (2, env_dim) of each training cell from its prototype rows."""
    sel = np.concatenate(list(proto_rows.values()))
    feats = pair_features_unique(model, data.subset(sel), batch_size=batch_size)
    if feats["env"] is None:
        return {}
    out = {}
    a = 0
    for c, rc in proto_rows.items():
        b = a + rc.size
        out[c] = make_prototype_np(
            model, feats["env"][a:b], np.asarray(data.label)[rc], feats["u_i"][a:b]
        )
        a = b
    return out


@dataclass
class CellValidation:
    """Validation AUPRs of one cell of one validation set (NaN where undefined).

    ``*_rest`` are on the cell's pairs outside the adapted support set; ``adapted`` keeps the
    adapted path's scores for the model card (not serialised); ``distance_aupr`` is filled
    in for the model card.
    """

    n: int
    n_pos: int
    prevalence: float
    aupr_zero_shot: float
    aupr_adapted: float | None = float("nan")
    aupr_u_i_rest: float = float("nan")
    aupr_zero_shot_rest: float = float("nan")
    adapted: dict[str, Any] | None = None
    distance_aupr: float | None = None

    def to_dict(self, torch_model: bool = True) -> dict[str, Any]:
        """The model card's record (the adapted scores left out)."""
        d: dict[str, Any] = {
            "n": self.n,
            "n_pos": self.n_pos,
            "prevalence": self.prevalence,
            "aupr_zero_shot": self.aupr_zero_shot,
            "aupr_adapted": self.aupr_adapted,
        }
        if torch_model:
            d["aupr_u_i_rest"] = self.aupr_u_i_rest
            d["aupr_zero_shot_rest"] = self.aupr_zero_shot_rest
        d["distance_aupr"] = self.distance_aupr
        return d


@dataclass
class SetValidation:
    """Validation of one set (``heldout_cells`` or ``heldout_region``): per-cell results and
    their means (early stopping watches ``aupr_zero_shot``)."""

    cells: dict[str, CellValidation]
    aupr_zero_shot: float
    aupr_adapted: float | None
    prevalence: float
    n: int
    aupr_u_i: float = float("nan")
    aupr_zero_shot_rest: float = float("nan")
    hsic: float = float("nan")
    distance_aupr: float | None = None
    #: Pair features and zero-shot scores of the set (model card only; not serialised).
    features: dict[str, Any] | None = None
    zero_shot: dict[str, Any] | None = None

    def to_dict(self, torch_model: bool = True) -> dict[str, Any]:
        """The model card's record of the set."""
        cells = {c: v.to_dict(torch_model) for c, v in self.cells.items()}
        if not torch_model:
            return {
                "cells": cells,
                "aupr_zero_shot": self.aupr_zero_shot,
                "aupr_adapted": self.aupr_adapted,
                "prevalence": self.prevalence,
                "n": self.n,
                "distance_aupr": self.distance_aupr,
            }
        return {
            "aupr_zero_shot": self.aupr_zero_shot,
            "aupr_adapted": self.aupr_adapted,
            "aupr_u_i": self.aupr_u_i,
            "aupr_zero_shot_rest": self.aupr_zero_shot_rest,
            "hsic": self.hsic,
            "prevalence": self.prevalence,
            "n": self.n,
            "cells": cells,
            "distance_aupr": self.distance_aupr,
        }


def _validate_cell(model, cp: CellPlan, y: np.ndarray, feats, zs, detail: bool) -> CellValidation:
    """Zero-shot AUPR of a cell, and adapted AUPR from its support pairs when it has some."""
    d = CellValidation(
        n=int(cp.idx.size),
        n_pos=int((y[cp.idx] == 1).sum()),
        prevalence=float((y[cp.idx] == 1).mean()),
        aupr_zero_shot=aupr(y[cp.idx], zs["logit"][cp.idx]),
    )
    if cp.support is None:
        return d
    proto = None
    if feats["env"] is not None:
        proto = make_prototype_np(
            model, feats["env"][cp.support], y[cp.support], feats["u_i"][cp.support]
        )
    rest_feats = {
        "u_i": feats["u_i"][cp.rest],
        "env": None if feats["env"] is None else feats["env"][cp.rest],
    }
    ad = score_features(model, rest_feats, proto)
    d.aupr_adapted = aupr(y[cp.rest], ad["logit"])
    d.aupr_u_i_rest = aupr(y[cp.rest], ad["u_i"])
    d.aupr_zero_shot_rest = aupr(y[cp.rest], zs["logit"][cp.rest])
    if detail:
        d.adapted = ad
    return d


def _hsic_of_set(ui_feat: np.ndarray | None, cells: np.ndarray, seed: int) -> float:
    """HSIC between U_I features and cell identity on a seeded subset (NaN for one cell)."""
    if np.unique(cells).size < 2 or ui_feat is None:
        return float("nan")
    rng = np.random.default_rng([seed, 5])
    pick = np.sort(rng.choice(cells.size, size=min(512, cells.size), replace=False))
    _, inv = np.unique(cells[pick], return_inverse=True)
    onehot = np.eye(int(inv.max()) + 1, dtype=np.float32)[inv.reshape(-1)]
    with torch.no_grad():
        return float(hsic(torch.from_numpy(ui_feat[pick]), torch.from_numpy(onehot)))


def validate_torch(
    model, data: PairData, plans: dict[str, ValPlan], cfg: TrainConfig, detail: bool = False
) -> dict[str, SetValidation]:
    """Validation of a torch model (population prototype already set), per set.

    With ``detail``, each set keeps its features and zero-shot scores and each cell its
    adapted scores (for the model card).
    """
    label = np.asarray(data.label)
    cells_all = np.asarray(data.cell_idx)
    res: dict[str, SetValidation] = {}
    for name, plan in plans.items():
        sub = data.subset(plan.rows)
        feats = pair_features_unique(model, sub, batch_size=cfg.batch_size, keep_ui_feat=True)
        y = label[plan.rows]
        zs = score_features(model, feats, None)
        per_cell = {cp.name: _validate_cell(model, cp, y, feats, zs, detail) for cp in plan.cells}
        res[name] = SetValidation(
            cells=per_cell,
            aupr_zero_shot=nanmean(d.aupr_zero_shot for d in per_cell.values()),
            aupr_adapted=nanmean(d.aupr_adapted for d in per_cell.values()),
            aupr_u_i=nanmean(d.aupr_u_i_rest for d in per_cell.values()),
            aupr_zero_shot_rest=nanmean(d.aupr_zero_shot_rest for d in per_cell.values()),
            hsic=_hsic_of_set(feats["ui_feat"], cells_all[plan.rows], cfg.seed),
            prevalence=float((y == 1).mean()),
            n=int(plan.rows.size),
            features=feats if detail else None,
            zero_shot=zs if detail else None,
        )
    return res


def primary_set(val: dict[str, SetValidation]) -> str | None:
    """The validation set early stopping watches."""
    for name in (VAL_CELLS, VAL_REGION):
        if name in val and np.isfinite(val[name].aupr_zero_shot):
            return name
    return None


def selection_value(val: dict[str, SetValidation]) -> float:
    """What early stopping maximises: the mean zero-shot AUPR over every validation cell of
    every set (the held-out cells and the training cells of the held-out region), each cell
    counted once; NaN when no cell has both classes.

    One held-out cell alone chose epochs that did not carry over to unseen cells: on a
    semi-synthetic benchmark (docs/benchmarks.md) its AUPR rose by 0.016 after one epoch of
    episodes while the held-out region's five cells fell by 0.012 and four unseen cells by
    0.024; the mean over all six validation cells agreed with the unseen cells.
    """
    per_cell = [c.aupr_zero_shot for v in val.values() for c in v.cells.values()]
    finite = [a for a in per_cell if np.isfinite(a)]
    return float(np.mean(finite)) if finite else float("nan")


def distance_auprs(data: PairData, split: Split, cfg: TrainConfig, plans) -> dict[str, Any]:
    """AUPR of the distance-only baseline (fit on the training rows) per set and cell."""
    from epcli.model.baselines import DistanceBaseline

    base = DistanceBaseline(seed=cfg.seed).fit(data, rows=split.train_rows)
    label = np.asarray(data.label)
    out: dict[str, Any] = {}
    for name, plan in plans.items():
        logit = base.logit(data, rows=plan.rows)
        y = label[plan.rows]
        cells = {cp.name: aupr(y[cp.idx], logit[cp.idx]) for cp in plan.cells}
        out[name] = {"cells": cells, "mean": nanmean(cells.values())}
    return out


def log_validation_summary(val: dict[str, Any], log: Log, prototypes: bool) -> None:
    """One line per validation set: the kept model's AUPR beside distance and prevalence.

    ``val`` is the model card's ``validation`` dict (``aupr_zero_shot``, ``aupr_adapted``,
    ``distance_aupr``, ``prevalence``, ``n`` per set); the adapted AUPR is shown only for a
    model with prototypes (``prototypes``).
    """
    for name, v in val.items():
        parts = [f"zero-shot AUPR {fmt3(v['aupr_zero_shot'])}"]
        if prototypes:
            parts.append(f"adapted {fmt3(v.get('aupr_adapted'))}")
        parts.append(f"distance baseline {fmt3(v['distance_aupr'])}")
        log(
            f"kept model on {name} (n {v['n']}, prevalence {fmt3(v['prevalence'])}): "
            + ", ".join(parts)
        )
