"""Sparse warm start of the motif-grounded PRISM: U_I fitted full-batch, gates from cells.

Motif statistics are computed once per training window, and U_I is a generalised linear
model of them (plus a low-rank bilinear term), so it can be fitted on *all* training pairs
at once, as glmnet fits a lasso: with the interaction held fixed, each fit is an
L1-penalised logistic regression solved to convergence (:func:`~epcli.model.lasso.fista`),
whose exact zeros are the motifs with evidence weaker than the penalty (episodic batches
and full-batch Adam with a proximal step kept every motif, docs/benchmarks.md).

:func:`warm_start`

1. standardises motif activities over the training windows;
2. for each penalty on a short path (extended while its strongest penalty scores best),
   fits the additive terms (bias, distance, enhancer and promoter motifs; positional
   pooling and level mixtures are left to the episodes), then chooses E x P motif pairs by
   forward selection on the residuals (in rounds, the top non-redundant entries of
   ``Z_E^T R Z_P``, the gradient of the bilinear term, each round's pairs fitted by a ridge
   logistic regression with the additive U_I as offset before the next is screened;
   :mod:`epcli.model.motif_pairs`), writes them into U and V (one rank per pair) and
   refits the additive terms around them; scores a held-out genome block of the training
   pairs; keeps the sparsest penalty within :data:`SPARSE_TOL` of the best held-out AUPR
   and refits on all pairs (docs/benchmarks.md); with one view per shared log-odds level,
   each E x P pair's views get their own levels first (:mod:`epcli.model.motif_levels`);
3. fits one scale per part of U_I (enhancer, promoter, interaction, distance) on the held-out
   block, with U_I fitted on the other pairs, and applies them to the final fit
   (:mod:`epcli.model.motif_scales`);
4. fits, per training cell, enhancer-motif deviations from U_I (ridge logistic regressions
   with U_I as offset); the 32 motifs whose deviations spread most over cells become R_E's
   environment, and the spread of each one's deviations over cells its prior scale in a new
   cell's direction (:mod:`epcli.model.motif_adapt`); both priors' strengths are chosen by
   simulated leave-one-cell-out few-shot episodes on the held-out genome block (and on the
   validation cells' pairs in the training region, which are never fitted), and the final
   prior reads the validation cells' deviations too (docs/model.md).

Episodic training then fine-tunes everything; a cell's R_E direction is fitted on adapting.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from epcli.core.metrics import aupr
from epcli.core.sampling import stratified_pick
from epcli.model.lasso import LassoResult, fista
from epcli.model.motif_adapt import fit_direction
from epcli.model.motif_consensus import refine_views
from epcli.model.motif_pairs import ridge_logistic, select_pairs
from epcli.model.motif_scales import apply_scales, fit_scales

#: Penalties tried, as multiples of ``cfg.sparsity``.
PATH = (1.0, 3.0, 10.0, 30.0)
#: When the strongest penalty of the path scores best on the held-out block, the path goes on
#: by this factor, at most MAX_EXTEND more penalties.
EXTEND = 3.0
MAX_EXTEND = 2
#: Of the penalties within this of the best held-out AUPR, the one with the fewest active
#: motifs is kept (as glmnet's lambda.1se; on the JASPAR rule: docs/benchmarks.md).
SPARSE_TOL = 0.005
#: R_E gates kept by the warm start: the motifs whose per-cell deviations spread most.
GATE_MOTIFS = 32
#: Prior SDs tried by the warm start: of the per-cell, per-motif deviations from U_I (log-odds
#: per SD of motif activity), and of a new cell's coefficients in units of them (0: no
#: adaptation); and the support size of its simulated episodes.
DEV_SDS = (0.005, 0.01, 0.02)
PRIOR_SDS = (0.0, 0.25, 0.5, 1.0, 2.0)
RE_SHOTS = 64
RE_DRAWS = 3
#: Cells whose episodes must be run before adapting is validated: one cell's episodes overfit
#: the choice (docs/benchmarks.md).
MIN_EPISODE_CELLS = 2
#: The priors when the episodes cannot be run (too few training cells): no adaptation (an
#: unvalidated prior lowered the zero-shot AUPR of the earlier example, docs/benchmarks.md).
UNVALIDATED_PRIOR = {
    "dev_sd": 0.01,
    "prior_sd": 0.0,
    "gain": None,
    "validated": False,
    "episode_cells": 0,
}


@dataclass
class WarmStartResult:
    """What :func:`warm_start` chose and measured.

    Attributes
    ----------
    sparsity : float
        The penalty kept.
    path : list of dict
        Per penalty: ``sparsity``, ``heldout_aupr``, ``active_motifs``.
    active_motifs : int
        Motifs with a non-zero weight after the final fit.
    interaction_pairs : int
        E x P motif pairs of the interaction after the final fit (those that passed their
        tests, :func:`~epcli.model.motif_pairs.select_pairs`; 0 to the interaction's rank).
    re_scale : float
        R_E's scale s (1 / ``re_bound``: R_E is about linear near 0).
    re_prior : dict
        ``dev_sd``, ``prior_sd``: the priors of the per-cell deviations and of a new cell's
        coefficients; ``gain``: adapted minus zero-shot AUPR in the simulated episodes.
    scales : dict or None
        ``scales`` (U_I part -> factor) and ``shift`` of the bias, fitted on the held-out
        block (:mod:`epcli.model.motif_scales`); None without a held-out block.
    levels, consensus : list of dict
        The log-odds levels refined, the consensus strings edited (:func:`refine_views`).
    """

    sparsity: float
    path: list[dict] = field(default_factory=list)
    active_motifs: int = 0
    interaction_pairs: int = 0
    re_scale: float | None = None
    re_prior: dict | None = None
    scales: dict | None = None
    levels: list[dict] = field(default_factory=list)
    consensus: list[dict] = field(default_factory=list)


@dataclass
class Pairs:
    """Training pairs as tensors (rows of the window statistics, log distance, labels)."""

    ei: torch.Tensor  # (n,) enhancer window of each pair
    pi: torch.Tensor  # (n,) promoter window
    ld: torch.Tensor  # (n,) log distance
    y: torch.Tensor  # (n,) float labels


def _parts(model, se, sp, pr: Pairs, inter: bool, z=None) -> dict[str, torch.Tensor]:
    """U_I's parts (:data:`~epcli.model.motif_scales.PARTS`) of pairs, each (n,), from window
    statistics; window terms are computed once per window.

    ``z`` = (z_E, z_P) precomputed activities, when the activity parameters are not fitted.
    """
    ze, zp = z if z is not None else (model.act_e(se), model.act_p(sp))
    out = {
        "enhancer": (ze @ model.w_e)[pr.ei],
        "promoter": (zp @ model.w_p)[pr.pi],
        "distance": model.distance_term(pr.ld),
    }
    if inter and model.cfg.use_interaction:
        out["interaction"] = ((ze @ model.u.T)[pr.ei] * (zp @ model.v.T)[pr.pi]).sum(-1)
    return out


def _u_i(model, se: torch.Tensor, sp: torch.Tensor, pr: Pairs, inter: bool, z=None):
    """U_I of pairs, shape (n,): the bias plus :func:`_parts`."""
    return model.bias + sum(_parts(model, se, sp, pr, inter, z).values())


def _fit(model, pr: Pairs, z, params, lam: float, inter: bool) -> LassoResult:
    """The L1-penalised logistic regression of U_I on the motif activities ``z`` = (z_E,
    z_P) of the windows (computed once: pooling and level mixtures are not fitted here),
    solved to convergence (:func:`~epcli.model.lasso.fista`); ``w_E`` and ``w_P`` carry the
    penalty ``lam``, the bias and distance terms none. With ``inter`` the interaction is a
    fixed part of U_I."""
    sparse = {id(model.w_e), id(model.w_p)}

    def loss() -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(_u_i(model, None, None, pr, inter, z), pr.y)

    return fista(params, [lam if id(p) in sparse else 0.0 for p in params], loss)


def _seed_interaction(model, se, sp, pr: Pairs) -> None:
    """U, V from E x P pairs chosen by forward selection on the residuals of the additive
    fit (:func:`~epcli.model.motif_pairs.select_pairs`, as many as the interaction's rank):
    U, V hold that sparse W exactly (one rank per pair)."""
    with torch.no_grad():
        ze, zp = model.act_e(se), model.act_p(sp)
        off = _u_i(model, se, sp, pr, inter=False)
        model.u.zero_()
        model.v.zero_()
    chosen, w = select_pairs(ze, zp, pr.ei, pr.pi, pr.y, off, model.u.shape[0])
    if not chosen:
        return
    with torch.no_grad():
        ii = torch.as_tensor([i for i, _ in chosen])
        jj = torch.as_tensor([j for _, j in chosen])
        k = torch.arange(len(chosen))
        root = w.abs().sqrt()
        model.u[k, ii] = root * w.sign()
        model.v[k, jj] = root


def _fit_u_i(model, se, sp, pr: Pairs, lam: float) -> bool:
    """U_I's weights from scratch under L1 ``lam``, with the activities' pooling and level
    mixtures at their initial values (uniform over bins; the episodes fit them: fitting them
    here too cost time and overfit the bundled example, docs/benchmarks.md). Returns whether
    every L1 fit converged."""
    with torch.no_grad():
        for p in (model.w_e, model.w_p, model.dist, model.u, model.v):
            p.zero_()
        model.bias.zero_()
        for act in (model.act_e, model.act_p):
            act.pos.zero_()
            act.thr.zero_()
        z = (model.act_e(se), model.act_p(sp))
    additive = [model.bias, model.w_e, model.w_p, model.dist]
    fits = [_fit(model, pr, z, additive, lam, False)]
    if model.cfg.use_interaction:
        _seed_interaction(model, se, sp, pr)
        # the screened pairs' weights stay as fitted (Adam on the bilinear factors made the
        # joint fit chaotic); the additive terms are refitted around them
        fits.append(_fit(model, pr, z, additive, lam, True))
    return all(f.converged for f in fits)


def _penalty_path(model, se, sp, pf: Pairs, ph: Pairs, base: float, log) -> list[dict]:
    """U_I fitted on ``pf`` at each penalty ``base`` x :data:`PATH` and scored on ``ph``;
    while the best held-out AUPR is at the strongest penalty so far and some motif is still
    kept, the path goes on by x :data:`EXTEND` (at most :data:`MAX_EXTEND` times): the end of
    a grid is no optimum.

    Returns
    -------
    list of dict
        Per penalty: ``sparsity``, ``heldout_aupr``, ``active_motifs``.
    """
    mults, out = list(PATH), []
    while len(out) < len(mults):
        lam = base * mults[len(out)]
        done = _fit_u_i(model, se, sp, pf, lam)
        with torch.no_grad():
            s = _u_i(model, se, sp, ph, inter=True).numpy()
        a = aupr(ph.y.numpy(), s)
        n_act = int(model.active_motifs().numel())
        out.append({"sparsity": lam, "heldout_aupr": a, "active_motifs": n_act})
        note = "" if done else " (the L1 fit stopped before converging)"
        log(f"warm start: L1 {lam:.3g}: held-out block AUPR {a:.3f}, {n_act} motifs{note}")
        best = max(range(len(out)), key=lambda i: out[i]["heldout_aupr"])
        at_end = len(out) == len(mults) and best == len(out) - 1
        if at_end and n_act and len(mults) < len(PATH) + MAX_EXTEND:
            mults.append(mults[-1] * EXTEND)
    return out


@dataclass
class PathFit:
    """The first step of :func:`warm_start` (:func:`penalty_path`), kept so that training can
    compare models (site sets) on it before finishing the warm start of one.

    Attributes
    ----------
    se, sp : torch.Tensor
        Scan statistics of the enhancer and promoter windows.
    path : list of dict
        Per penalty: ``sparsity``, ``heldout_aupr``, ``active_motifs`` (empty without a
        held-out block with both classes, or with ``cfg.sparsity == 0``).
    """

    se: torch.Tensor
    sp: torch.Tensor
    path: list[dict]

    @property
    def best_aupr(self) -> float:
        """The path's best held-out block AUPR (NaN without a path)."""
        return max((r["heldout_aupr"] for r in self.path), default=float("nan"))


def _pairs_of(enh_idx, pro_idx, log_dist, labels) -> Callable[[np.ndarray], Pairs]:
    def pairs(rows: np.ndarray) -> Pairs:
        return Pairs(
            torch.as_tensor(enh_idx[rows], dtype=torch.long),
            torch.as_tensor(pro_idx[rows], dtype=torch.long),
            torch.as_tensor(log_dist[rows], dtype=torch.float32),
            torch.as_tensor(labels[rows], dtype=torch.float32),
        )

    return pairs


def penalty_path(
    model,
    enh_codes: np.ndarray,
    pro_codes: np.ndarray,
    enh_idx: np.ndarray,
    pro_idx: np.ndarray,
    log_dist: np.ndarray,
    labels: np.ndarray,
    block: np.ndarray,
    log: Callable[[str], None] | None = None,
    episode_only: np.ndarray | None = None,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> PathFit:
    """Scan the windows once, standardise, and fit U_I at each penalty of the path on the
    pairs outside ``block``, scoring the block (steps 1-2 of :func:`warm_start`; the same
    parameters; ``stats``: the windows' scan statistics when already computed).

    Returns
    -------
    PathFit
    """
    log = log or (lambda _m: None)
    with torch.no_grad():  # gates are set from the cells at the end (_init_cell_prior)
        model.gate.zero_()
    fitted = np.ones(labels.size, bool) if episode_only is None else ~np.asarray(episode_only)
    se, sp = stats or (model.scan_stats(enh_codes), model.scan_stats(pro_codes))
    model.fit_normalization(
        se[torch.as_tensor(np.unique(enh_idx[fitted]))],
        sp[torch.as_tensor(np.unique(pro_idx[fitted]))],
    )
    pairs = _pairs_of(enh_idx, pro_idx, log_dist, labels)
    fit_rows, held = np.flatnonzero(~block & fitted), np.flatnonzero(block & fitted)
    model.train()
    path: list[dict] = []
    if held.size and 0 < labels[held].sum() < held.size and model.cfg.sparsity > 0:
        path = _penalty_path(model, se, sp, pairs(fit_rows), pairs(held), model.cfg.sparsity, log)
    return PathFit(se, sp, path)


def warm_start(
    model,
    enh_codes: np.ndarray,
    pro_codes: np.ndarray,
    enh_idx: np.ndarray,
    pro_idx: np.ndarray,
    log_dist: np.ndarray,
    labels: np.ndarray,
    cells: np.ndarray,
    block: np.ndarray,
    log: Callable[[str], None] | None = None,
    episode_only: np.ndarray | None = None,
    pre: PathFit | None = None,
) -> WarmStartResult:
    """Fit U_I full-batch with a chosen L1 penalty, and initialise the R_E gates.

    Parameters
    ----------
    model : MotifPrismModel
    enh_codes : np.ndarray, shape (Ne, Le), uint8
        The distinct enhancer windows of the training pairs.
    pro_codes : np.ndarray, shape (Np, Lp), uint8
    enh_idx, pro_idx : np.ndarray, shape (n,), int64
        Window of each training pair (rows of ``enh_codes`` / ``pro_codes``).
    log_dist : np.ndarray, shape (n,)
    labels : np.ndarray, shape (n,)
        0/1.
    cells : np.ndarray, shape (n,)
        Cell index of each pair.
    block : np.ndarray, shape (n,), bool
        Pairs of a held-out genome block, used to choose the penalty.
    log : callable, optional
    episode_only : np.ndarray, shape (n,), bool, optional
        Pairs of validation cells: never fitted (nor used for the normalisation or the
        penalty); their cells are adapted to in the simulated episodes that choose the
        R_E prior's strengths (supports outside ``block``, queries inside it), each from the
        prior of the fitted cells, and their deviations join the final prior's.
    pre : PathFit, optional
        :func:`penalty_path` of this model on these data, when already run.

    Returns
    -------
    WarmStartResult
    """
    log = log or (lambda _m: None)
    if pre is None:
        pre = penalty_path(
            model,
            enh_codes,
            pro_codes,
            enh_idx,
            pro_idx,
            log_dist,
            labels,
            block,
            log,
            episode_only,
        )
    se, sp = pre.se, pre.sp
    fitted = np.ones(labels.size, bool) if episode_only is None else ~np.asarray(episode_only)
    pairs = _pairs_of(enh_idx, pro_idx, log_dist, labels)
    fit_rows, held = np.flatnonzero(~block & fitted), np.flatnonzero(block & fitted)
    result = WarmStartResult(sparsity=model.cfg.sparsity, path=pre.path)
    model.train()
    if result.path:
        top = pre.best_aupr
        near = [r for r in result.path if r["heldout_aupr"] >= top - SPARSE_TOL]
        # fewest motifs (with a converged fit, the strongest penalty; kept in case of ties)
        result.sparsity = min(near, key=lambda r: (r["active_motifs"], -r["sparsity"]))["sparsity"]
    train_rows = np.flatnonzero(fitted)
    choice = None
    if held.size:
        # U_I from the fitting rows only, so that the held-out block is scored out of sample
        _fit_u_i(model, se, sp, pairs(fit_rows), result.sparsity)
        on = pairs(held)  # validation cells' pairs are never fitted, not even these scales
        result.levels, result.consensus = refine_views(
            model, (enh_codes, pro_codes), (se, sp), (enh_idx[fitted], pro_idx[fitted]),
            lambda z: _u_i(model, se, sp, on, inter=True, z=z), on.y, log, part=on.ei % 2 == 0,
        )  # fmt: skip
        if result.levels or result.consensus:  # the weights again, on the refined views
            _fit_u_i(model, se, sp, pairs(fit_rows), result.sparsity)
        with torch.no_grad():
            parts = _parts(model, se, sp, on, inter=True)
        result.scales = fit_scales(parts, float(model.bias.detach()), on.y)
        apply_scales(model, result.scales)
        log(
            "warm start: scales of U_I's parts on the held-out block: "
            + ", ".join(f"{k} {v:.2f}" for k, v in result.scales["scales"].items())
        )
        every = pairs(np.arange(labels.size))
        episodes = _episodes(
            every,
            np.asarray(cells),
            np.concatenate([fit_rows, np.flatnonzero(~block & ~fitted)]),
            np.concatenate([held, np.flatnonzero(block & ~fitted)]),
        )
        choice = _choose_cell_prior(model, se, sp, every, cells, fit_rows, episodes, log)
    _fit_u_i(model, se, sp, pairs(train_rows), result.sparsity)
    if result.scales is not None:
        apply_scales(model, result.scales)
    prior = _init_cell_prior(model, se, sp, pairs(np.arange(labels.size)), cells, choice)
    result.re_prior = prior
    result.re_scale = float(F.softplus(model.re_scale_raw.detach()))
    how = (
        f"simulated {RE_SHOTS}-shot episodes on held-out cells: {prior['gain']:+.4f} AUPR"
        if prior["validated"]
        else "adapting off: the simulated episodes need 3 training cells with both classes"
    )
    log(
        f"warm start: R_E prior: deviations SD {prior['dev_sd']:g}, coefficients SD "
        f"{prior['prior_sd']:g} ({how})"
    )
    result.active_motifs = int(model.active_motifs().numel())
    result.interaction_pairs = int((model.u.detach() != 0).any(1).sum())
    return result


class CellPrior:
    """Per-cell deviations of enhancer-motif effects from U_I, and the prior built from them.

    Parameters
    ----------
    ze : torch.Tensor, shape (Ne, F)
        Enhancer motif activities of the training windows.
    offset : torch.Tensor, shape (n,)
        U_I of the training pairs.
    pr : Pairs
        The training pairs (window indices, labels).
    cells : np.ndarray, shape (n,)
        Cell index of each pair.
    """

    def __init__(self, ze: torch.Tensor, offset: torch.Tensor, pr: Pairs, cells: np.ndarray):
        self.ze, self.offset, self.pr, self.cells = ze, offset, pr, cells

    def devs(self, rows: np.ndarray, sd: float, cols: torch.Tensor | None = None) -> dict:
        """Per cell with both classes and >= 20 pairs among ``rows``: the ridge-logistic
        coefficients (prior SD ``sd``) of z_E's columns ``cols`` (all: None) on top of U_I."""
        out = {}
        for c in np.unique(self.cells[rows]):
            r = torch.as_tensor(rows[self.cells[rows] == c])
            y = self.pr.y[r]
            if r.numel() < 20 or y.min() == y.max():
                continue
            wins, rows_of = torch.unique(self.pr.ei[r], return_inverse=True)
            x = self.ze[wins] if cols is None else self.ze[wins][:, cols]
            out[int(c)] = ridge_logistic(x, y, self.offset[r], sd, rows_of)
        return out

    def prior(self, rows: np.ndarray, sd: float, skip=None, full=None):
        """0/1 gates (F,) and per-motif prior scales (F,): the spread over the cells (except
        ``skip``) of their deviations, refitted on the :data:`GATE_MOTIFS` motifs whose
        deviations spread most. None with fewer than 2 cells."""
        full = full if full is not None else self.devs(rows, sd)
        cells = [c for c in full if c != skip]
        if len(cells) < 2:
            return None
        nf = self.ze.shape[1]
        k = min(GATE_MOTIFS, nf)
        cols = torch.stack([full[c] for c in cells]).std(0).topk(k).indices
        keep = rows[np.isin(self.cells[rows], cells)]
        # the same prior per unit of total deviation variance on fewer motifs
        d = self.devs(keep, sd * math.sqrt(nf / k), cols)
        if len(d) < 2:
            return None
        scale = torch.zeros(nf)
        scale[cols] = torch.stack(list(d.values())).std(0)
        gate = torch.zeros(nf)
        gate[cols] = 1.0
        return gate, scale


def _episode_aupr(model, cp: CellPrior, gate, scale, sup, q, prior_sd: float) -> float:
    """AUPR on query rows ``q`` after adapting to support rows ``sup`` (R_E scale 1/bound)."""
    env = cp.ze * gate
    pr = cp.pr
    bound = model.cfg.re_bound
    delta, centre = fit_direction(
        env[pr.ei[sup]], pr.y[sup], cp.offset[sup], scale, prior_sd, bound, 1.0 / bound, 1.0
    )
    r = -((env[pr.ei[q]] - centre) @ delta)
    score = cp.offset[q] - bound * torch.tanh(r / bound)
    return aupr(pr.y[q].numpy(), score.numpy())


def _episodes(pr: Pairs, cells: np.ndarray, sup_rows: np.ndarray, query_rows: np.ndarray):
    """Simulated few-shot episodes: per cell with both classes among its ``sup_rows`` and its
    ``query_rows``, :data:`RE_DRAWS` stratified supports of :data:`RE_SHOTS` pairs (seeded).

    Returns
    -------
    list of (int, list of torch.Tensor, torch.Tensor)
        Cell, support rows per draw, query rows.
    """
    rng = np.random.default_rng(0)
    out = []
    for c in np.unique(cells[query_rows]):
        q, f = query_rows[cells[query_rows] == c], sup_rows[cells[sup_rows] == c]
        if 0 < pr.y[q].sum() < q.size and 0 < pr.y[f].sum() < f.size:
            y = pr.y[f].numpy()
            sups = [
                np.concatenate(stratified_pick(rng, f[y == 1], f[y == 0], RE_SHOTS))
                for _ in range(RE_DRAWS)
            ]
            out.append((int(c), [torch.as_tensor(s) for s in sups], torch.as_tensor(q)))
    return out


@torch.no_grad()
def _choose_cell_prior(model, se, sp, pr: Pairs, cells, fit_rows, episodes, log) -> dict:
    """The priors of a cell's R_E direction, chosen by simulated leave-one-cell-out episodes.

    The model's U_I must be fitted on ``fit_rows`` only. For each candidate (deviation
    prior, coefficient prior) and each episode of :func:`_episodes` (a training cell's, or
    a validation cell's): the prior is built from the deviations of the *other* training
    cells on the fitting rows, the supports adapt it, and the queries (a held-out genome
    block) are scored. The pair with the best mean AUPR is kept; coefficient prior 0 (no
    adaptation: R_E = 0) is a candidate, so adapting is switched off when it does not pay.

    Returns
    -------
    dict or None
        ``dev_sd``, ``prior_sd``, ``gain`` (adapted minus zero-shot mean AUPR),
        ``validated``, ``episode_cells`` (cells whose episodes ran); None when fewer than
        :data:`MIN_EPISODE_CELLS` cells have episodes (both classes in their supports and
        queries, and 2 other training cells for their prior).
    """
    cells = np.asarray(cells)
    ze = model.act_e(se)
    offset = _u_i(model, se, sp, pr, inter=True)
    cp = CellPrior(ze, offset, pr, cells)
    best = {"dev_sd": DEV_SDS[len(DEV_SDS) // 2], "prior_sd": 0.0, "gain": 0.0, "validated": True}
    evaluated = False
    with torch.enable_grad():
        for dev_sd in DEV_SDS if episodes else ():
            full = cp.devs(fit_rows, dev_sd)
            folds = [(cp.prior(fit_rows, dev_sd, skip=c, full=full), s, q) for c, s, q in episodes]
            folds = [f for f in folds if f[0] is not None]
            if len(folds) < MIN_EPISODE_CELLS:
                continue
            evaluated = True
            best["episode_cells"] = len(folds)
            base = np.nanmean([aupr(pr.y[q].numpy(), offset[q].numpy()) for _, _, q in folds])
            for prior_sd in PRIOR_SDS:
                a = np.nanmean(
                    [
                        _episode_aupr(model, cp, g, b, s, q, prior_sd)
                        for (g, b), sups, q in folds
                        for s in sups
                    ]
                )
                log(
                    f"warm start: R_E prior {dev_sd:g}/{prior_sd:g}: "
                    f"adapted - zero-shot {a - base:+.4f}"
                )
                if a - base > best["gain"] + 1e-4:
                    best = {**best, "dev_sd": dev_sd, "prior_sd": prior_sd, "gain": float(a - base)}
    return best if evaluated else None


@torch.no_grad()
def _init_cell_prior(model, se, sp, pr: Pairs, cells, choice: dict | None) -> dict:
    """Set R_E's gates, motif prior scales (from every pair of ``pr``: the training and
    validation cells'), prior SD and scale (1 / re_bound) with the priors of ``choice`` (None:
    :data:`UNVALIDATED_PRIOR`)."""
    best = choice or dict(UNVALIDATED_PRIOR)
    cells = np.asarray(cells)
    ze = model.act_e(se)
    cp = CellPrior(ze, _u_i(model, se, sp, pr, inter=True), pr, cells)
    with torch.enable_grad():
        made = cp.prior(np.arange(cells.size), best["dev_sd"])
    nf = ze.shape[1]
    gate, scale = made if made is not None else (torch.zeros(nf), torch.zeros(nf))
    model.gate.copy_(gate)
    model.motif_sd.copy_(scale)
    model.re_prior_sd.fill_(best["prior_sd"])
    bound = model.cfg.re_bound
    model.re_scale_raw.fill_(math.log(math.expm1(1.0 / bound)))  # R_E ~ linear near 0
    model.population_prototype.zero_()
    model.forget_plans()
    return best
