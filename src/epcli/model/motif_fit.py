"""Sparse warm start of the motif-grounded PRISM: U_I fitted full-batch, gates from cells.

Motif statistics are computed once per training window, and U_I is a generalised linear
model of them (plus a low-rank bilinear term), so it can be fitted on *all* training pairs
at each step at little cost, as glmnet fits a lasso: full-batch gradients have no sampling
noise, so the L1 penalty (a proximal step) removes exactly the motifs whose evidence is
weaker than the penalty. Small episodic batches cannot do that: their gradient noise is larger
than any useful penalty, so every motif keeps a non-zero weight.

:func:`warm_start`

1. standardises motif activities over the training windows;
2. for each penalty on a short path, fits the additive terms (bias, distance, enhancer and
   promoter motifs, positional pooling, score-level mixtures), then seeds the E x P
   interaction from the residuals (the top entries of ``Z_E^T R Z_P``: the gradient of the
   bilinear term, whose SVD gives U and V) and fits everything; scores a held-out genome
   block of the training pairs; keeps the best penalty and refits on all pairs;
3. fits, per training cell, additive enhancer-motif deviations from U_I; the spread of a
   motif's deviation over cells initialises its R_E gate (TFs whose activity differs
   between cells).

Episodic training then learns R_E and fine-tunes everything.
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

#: Penalties tried, as multiples of ``cfg.sparsity``.
PATH = (1.0, 3.0, 10.0, 30.0)
#: Full-batch steps for the additive terms, then for everything.
STEPS_ADDITIVE = 120
STEPS_JOINT = 160
STEPS_CELL = 80
LR = 0.05
#: R_E gates kept by the warm start: the motifs whose per-cell deviations spread most.
GATE_MOTIFS = 32
#: R_E scales tried by the warm start, and the support size of its simulated episodes.
RE_SCALES = (1e-3, 0.03, 0.1, 0.3, 1.0)
RE_SHOTS = 64


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
    """

    sparsity: float
    path: list[dict] = field(default_factory=list)
    active_motifs: int = 0
    re_scale: float | None = None


@dataclass
class _Pairs:
    ei: torch.Tensor  # (n,) enhancer window of each pair
    pi: torch.Tensor  # (n,) promoter window
    ld: torch.Tensor  # (n,) log distance
    y: torch.Tensor  # (n,) float labels


def _u_i(model, se: torch.Tensor, sp: torch.Tensor, pr: _Pairs, inter: bool, z=None):
    """U_I of pairs from window statistics; window terms are computed once per window.

    ``z`` = (z_E, z_P) precomputed activities, when the activity parameters are not fitted.
    """
    ze, zp = z if z is not None else (model.act_e(se), model.act_p(sp))
    u = model.bias + (ze @ model.w_e)[pr.ei] + (zp @ model.w_p)[pr.pi]
    u = u + model.distance_term(pr.ld)
    if inter and model.cfg.use_interaction:
        u = u + ((ze @ model.u.T)[pr.ei] * (zp @ model.v.T)[pr.pi]).sum(-1)
    return u


def _fit(
    model, se, sp, pr: _Pairs, params, lam: float, steps: int, inter: bool, fit_act: bool
) -> None:
    """Full-batch Adam with the L1 proximal step on the model's sparse parameters.

    Without ``fit_act`` the motif activities are computed once (the cheap path of the
    penalty search); with it, positional pooling and level mixtures are fitted too.
    """
    opt = torch.optim.Adam(params, lr=LR)
    saved = model.cfg.sparsity
    model.cfg.sparsity = lam
    z = None
    if not fit_act:
        with torch.no_grad():
            z = (model.act_e(se), model.act_p(sp))
    try:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            u = _u_i(model, se, sp, pr, inter, z)
            loss = F.binary_cross_entropy_with_logits(u, pr.y)
            loss.backward()
            opt.step()
            model.proximal_step(opt)
    finally:
        model.cfg.sparsity = saved


#: Two candidate E x P pairs are redundant when both their enhancer motifs and their
#: promoter motifs correlate above this over the training windows (JASPAR holds many
#: matrices of one family, e.g. a dozen E-box matrices).
REDUNDANT_R = 0.6
#: Strongest non-redundant pairs seeded into the interaction.
SEED_PAIRS = 16


def screen_pairs(c: torch.Tensor, ze: torch.Tensor, zp: torch.Tensor, k: int) -> list[tuple]:
    """The k strongest entries of a pair score matrix, skipping redundant pairs.

    Parameters
    ----------
    c : torch.Tensor, shape (F, F)
        Score of each (enhancer motif, promoter motif) pair.
    ze, zp : torch.Tensor, shape (Ne, F), (Np, F)
        Motif activities of the training windows (for motif-motif correlations).

    Returns
    -------
    list of (int, int)
        Pairs in decreasing |score|; a pair is skipped when an already chosen pair has
        both motifs correlated above :data:`REDUNDANT_R` with its own.
    """
    re = torch.nan_to_num(torch.corrcoef(ze.T)).abs()
    rp = torch.nan_to_num(torch.corrcoef(zp.T)).abs()
    order = c.abs().flatten().argsort(descending=True)[: 200 * k]
    chosen: list[tuple[int, int]] = []
    n = c.shape[1]
    for f in order.tolist():
        i, j = divmod(f, n)
        if any(re[i, a] > REDUNDANT_R and rp[j, b] > REDUNDANT_R for a, b in chosen):
            continue
        chosen.append((i, j))
        if len(chosen) == k:
            break
    return chosen


@torch.no_grad()
def _seed_interaction(model, se, sp, pr: _Pairs, n_e: int, n_p: int) -> None:
    """U, V from the strongest non-redundant entries of the residual correlation.

    ``C = Z_E^T R Z_P / n`` (R: residuals of the additive fit summed per window pair) is
    minus the gradient of the BCE with respect to W; its strongest non-redundant entries
    (:func:`screen_pairs`) form a sparse W, whose SVD seeds U and V at a small scale.
    """
    r = pr.y - torch.sigmoid(_u_i(model, se, sp, pr, inter=False))
    rm = torch.zeros(n_e, n_p).index_put_((pr.ei, pr.pi), r, accumulate=True)
    ze, zp = model.act_e(se), model.act_p(sp)
    c = ze.T @ rm @ zp / pr.y.numel()  # (F, F)
    w_seed = torch.zeros_like(c)
    for i, j in screen_pairs(c, ze, zp, SEED_PAIRS):
        w_seed[i, j] = c[i, j]
    rank = model.u.shape[0]
    u, s, vh = torch.linalg.svd(w_seed, full_matrices=False)
    scale = 0.3 / s[0].clamp(min=1e-8)  # the strongest seeded pair starts at weight 0.3
    root = (s[:rank] * scale).sqrt()
    model.u.copy_((u[:, :rank] * root).T)
    model.v.copy_(vh[:rank] * root[:, None])


def _fit_u_i(model, se, sp, pr: _Pairs, lam: float, fit_act: bool) -> None:
    with torch.no_grad():
        for p in (model.w_e, model.w_p, model.dist, model.u, model.v):
            p.zero_()
        model.bias.zero_()
        for act in (model.act_e, model.act_p):
            act.pos.zero_()
            act.thr.zero_()
    act = [model.act_e.pos, model.act_e.thr, model.act_p.pos, model.act_p.thr]
    additive = [model.bias, model.w_e, model.w_p, model.dist] + (act if fit_act else [])
    _fit(model, se, sp, pr, additive, lam, STEPS_ADDITIVE, False, fit_act)
    if model.cfg.use_interaction:
        _seed_interaction(model, se, sp, pr, se.shape[0], sp.shape[0])
        params = [*additive, model.u, model.v]
        _fit(model, se, sp, pr, params, lam, STEPS_JOINT, True, fit_act)


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

    Returns
    -------
    WarmStartResult
    """
    log = log or (lambda _m: None)
    with torch.no_grad():  # gates are set from the cells at the end (_init_gates)
        model.gate.zero_()
    se = model.scan_stats(enh_codes)
    sp = model.scan_stats(pro_codes)
    model.fit_normalization(se, sp)

    def pairs(rows: np.ndarray) -> _Pairs:
        return _Pairs(
            torch.as_tensor(enh_idx[rows], dtype=torch.long),
            torch.as_tensor(pro_idx[rows], dtype=torch.long),
            torch.as_tensor(log_dist[rows], dtype=torch.float32),
            torch.as_tensor(labels[rows], dtype=torch.float32),
        )

    fit_rows, held = np.flatnonzero(~block), np.flatnonzero(block)
    base = model.cfg.sparsity
    result = WarmStartResult(sparsity=base)
    best = -1.0
    model.train()
    if held.size and 0 < labels[held].sum() < held.size and base > 0:
        pf, ph = pairs(fit_rows), pairs(held)
        for mult in PATH:
            lam = base * mult
            _fit_u_i(model, se, sp, pf, lam, fit_act=False)
            with torch.no_grad():
                s = _u_i(model, se, sp, ph, inter=True).numpy()
            a = aupr(labels[held], s)
            n_act = int(model.active_motifs().numel())
            result.path.append({"sparsity": lam, "heldout_aupr": a, "active_motifs": n_act})
            log(f"warm start: L1 {lam:.3g}: held-out block AUPR {a:.3f}, {n_act} motifs")
            if a > best:
                best, result.sparsity = a, lam
    all_pairs = pairs(np.arange(labels.size))
    _fit_u_i(model, se, sp, all_pairs, result.sparsity, fit_act=True)
    _init_gates(model, se, sp, all_pairs, torch.as_tensor(cells), result.sparsity)
    if held.size:
        result.re_scale = _init_re_scale(model, se, sp, labels, cells, pairs, fit_rows, held)
        log(f"warm start: R_E scale {result.re_scale:g} (simulated {RE_SHOTS}-shot episodes)")
    result.active_motifs = int(model.active_motifs().numel())
    return result


@torch.no_grad()
def _init_re_scale(model, se, sp, labels, cells, pairs, fit_rows, held) -> float:
    """Choose R_E's scale s by simulated episodes on the training cells.

    For each training cell, a stratified support set of :data:`RE_SHOTS` pairs from the
    fitting rows gives a prototype; the cell's pairs in the held-out genome block are scored
    with each scale of :data:`RE_SCALES`; the scale with the best mean AUPR is kept (the
    smallest leaves R_E near 0, so adapting cannot start out worse than U_I alone).
    """
    rng = np.random.default_rng(0)
    env_w = model.act_e(se) * model.gates()
    ze, zp = model.act_e(se), model.act_p(sp)
    episodes = []
    for c in np.unique(cells[held]):
        q = held[cells[held] == c]
        f = fit_rows[cells[fit_rows] == c]
        yf, yq = labels[f], labels[q]
        if not (0 < yq.sum() < yq.size and 0 < yf.sum() < yf.size):
            continue
        ps, ns = stratified_pick(rng, f[yf == 1], f[yf == 0], RE_SHOTS)
        sup = pairs(np.concatenate([ps, ns]))
        proto = model.make_prototype(env_w[sup.ei], sup.y)
        pq = pairs(q)
        u = _u_i(model, se, sp, pq, inter=True, z=(ze, zp))
        lin = model.r_e_linear(env_w[pq.ei], proto)
        episodes.append((u, lin, yq))
    if not episodes or not model.cfg.use_re:
        return float(F.softplus(model.re_scale_raw))
    best = (-1.0, RE_SCALES[0])
    for s in RE_SCALES:
        a = np.nanmean(
            [
                aupr(y, (u - model.cfg.re_bound * torch.tanh(s * lin)).numpy())
                for u, lin, y in episodes
            ]
        )
        if a > best[0] + 1e-4:
            best = (a, s)
    model.re_scale_raw.fill_(math.log(math.expm1(best[1])))
    return best[1]


def _init_gates(model, se, sp, pr: _Pairs, cells: torch.Tensor, lam: float) -> None:
    """R_E gates from the spread over cells of per-cell enhancer-motif deviations."""
    with torch.no_grad():
        offset = _u_i(model, se, sp, pr, inter=True)
        ze = model.act_e(se)
    devs = []
    for c in torch.unique(cells):
        m = cells == c
        if m.sum() < 20 or pr.y[m].min() == pr.y[m].max():
            continue
        d = torch.zeros(ze.shape[1], requires_grad=True)
        opt = torch.optim.Adam([d], lr=LR)
        ei, yc, off = pr.ei[m], pr.y[m], offset[m]
        for _ in range(STEPS_CELL):
            opt.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(off + (ze @ d)[ei], yc)
            loss.backward()
            opt.step()
            with torch.no_grad():  # plain soft threshold: d starts at 0, few steps
                d.copy_(d.sign() * (d.abs() - LR * lam).clamp(min=0.0))
        devs.append(d.detach())
    with torch.no_grad():
        if len(devs) >= 2:
            spread = torch.stack(devs).std(0)
            g = spread / spread.max().clamp(min=1e-8)
            keep = torch.zeros_like(g, dtype=torch.bool)
            keep[g.topk(min(GATE_MOTIFS, g.numel())).indices] = True
            model.gate.copy_(torch.where(keep & (g > 0.05), g, torch.zeros_like(g)))
        model._active = None
