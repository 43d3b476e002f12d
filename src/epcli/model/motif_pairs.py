"""E x P motif pairs of the motif-grounded PRISM's interaction: screened, then fitted.

The warm start (:mod:`epcli.model.motif_fit`) gives U_I's bilinear term one rank per chosen
(enhancer motif, promoter motif) pair. The pairs are chosen by forward selection on the
residuals, as orthogonal matching pursuit does: ``C = Z_E^T R Z_P / n`` (R: the residuals
``y - sigmoid(U_I)`` summed per window pair) is minus the gradient of the loss with respect to
the pair weights W; its strongest non-redundant entries join the chosen pairs, the chosen
pairs' weights are refitted by a ridge logistic regression (the additive U_I as offset), and
the residuals are recomputed before the next pairs are screened.

Why rounds. JASPAR holds many matrices of one family, and each matrix several views: one
strong planted pair (ESRRA x BHLHE40) also lights up its relatives (NR5A1 x BHLHE40, ESRRA x
BHLHE41, ...) below the redundancy threshold. Screened once, those relatives took the
interaction's ranks and weaker real pairs (weights 0.6-0.9) were never fitted; once the strong
pair is fitted, its relatives' residual correlation is gone (docs/benchmarks.md).

Why tests. Every round screens millions of pairs, and their largest entries are large by
chance alone. Of the entries of largest |C|, a pair is taken only when its score test,
adjusted for its own two motifs' main effects and for the dispersion over window pairs
(:func:`pair_scores`), reaches |z| >= :data:`MIN_Z`; after the last round, pairs whose
weight fails its Wald test given the others are dropped one at a time (:func:`wald_z`).
Selection stops when no pair passes, and the interaction may stay empty. Without the tests
the rank was always filled: noise pairs joined the planted ones on the benchmarks (one
collinear couple with weights -0.26 and +0.34 ranked 6th on a model card), and on the bundled
example every chosen pair was noise (docs/benchmarks.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

#: L-BFGS iterations of :func:`ridge_logistic`.
RIDGE_ITERS = 100
#: Two candidate E x P pairs are redundant when both their enhancer motifs and their
#: promoter motifs correlate above this over the training windows (JASPAR holds many
#: matrices of one family, e.g. a dozen E-box matrices).
REDUNDANT_R = 0.6
#: Prior SD (log-odds per SD of the product) of the chosen pairs' weights.
SEED_PRIOR_SD = 1.0
#: Rounds of screening: each adds about ``k / SCREEN_ROUNDS`` pairs (1: screen once).
SCREEN_ROUNDS = 4
#: Candidates per wanted or taken pair: only this many entries of largest |C| per pair are
#: screened (and tested), so a pair of tiny score that passes its test (a rare motif's)
#: cannot rise to the top when the strong ones fail.
CANDIDATES_PER_PAIR = 200
#: The threshold of :func:`_candidates`: a sample of |C| with this many entries per wanted
#: one, and its entry that about ``_SAMPLE_SPARE`` times the wanted ones pass (and
#: ``_SAMPLE_SLACK`` sample entries more, against the sample's chance).
_SAMPLE_PER_PICK = 100
_SAMPLE_SPARE = 3
_SAMPLE_SLACK = 20
#: Candidate pairs tested at a time (bounds memory to about ``Ne * this`` floats).
_TEST_CHUNK = 2048
#: Smallest |z| of a pair's tests (:func:`pair_scores`, :func:`wald_z`). Millions of pairs
#: are screened (879 JASPAR matrices, several views each): a Bonferroni bound for 1e7 tests at
#: 0.05 is z = 5.6; once a benchmark rule's planted pairs were fitted, the largest plain |z|
#: left was 5.3, and the planted pairs' had been 25-42 (docs/benchmarks.md).
MIN_Z = 6.0


def ridge_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    off: torch.Tensor,
    sd: float,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Ridge logistic regression with an offset: the MAP coefficients of
    ``logit = off + x @ d + c`` with ``d ~ N(0, sd^2 I)`` and a free intercept c (L-BFGS in
    float64, :data:`RIDGE_ITERS` iterations).

    Parameters
    ----------
    x : torch.Tensor, shape (n, D), or (W, D) with ``rows``
        Features of each row, or of each window when rows share windows.
    y : torch.Tensor, shape (n,)
        0/1 labels.
    off : torch.Tensor, shape (n,)
        The offset (log-odds).
    sd : float
        Prior SD of the coefficients.
    rows : torch.Tensor, shape (n,), int64, optional
        The row of ``x`` (window) of each of the n rows: ``x @ d`` is then computed once per
        window, and the gradient summed per window (far cheaper when windows recur in many
        pairs: a cell's ~10,000 training pairs share ~1,000 enhancer windows).

    Returns
    -------
    torch.Tensor, shape (D,), float32
        d (the intercept is dropped).
    """
    x, y, off = x.double(), y.double(), off.double()
    d = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([d], max_iter=RIDGE_ITERS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        xd = x @ d[:-1]
        logit = off + (xd if rows is None else xd[rows]) + d[-1]
        loss = F.binary_cross_entropy_with_logits(logit, y, reduction="sum")
        loss = loss + 0.5 * (d[:-1] ** 2).sum() / sd**2
        loss.backward()
        return loss

    opt.step(closure)
    return d.detach()[:-1].float()


def _standardized(z: torch.Tensor) -> torch.Tensor:
    """Columns of ``z`` (n, F) centred and scaled to unit norm (constant columns: 0), so that
    ``a.T @ b`` of two columns is their Pearson correlation."""
    z = z - z.mean(0)
    norm = z.norm(dim=0)
    return torch.where(norm > 0, z / norm.clamp(min=1e-12), torch.zeros_like(z))


def screen_pairs(
    c: torch.Tensor,
    ze: torch.Tensor,
    zp: torch.Tensor,
    k: int,
    taken: list[tuple[int, int]] | tuple = (),
    ok: torch.Tensor | None = None,
) -> list[tuple]:
    """The k strongest entries of a pair score matrix, skipping redundant pairs and pairs
    that fail their test.

    Parameters
    ----------
    c : torch.Tensor, shape (F, F)
        Score of each (enhancer motif, promoter motif) pair.
    ze, zp : torch.Tensor, shape (Ne, F), (Np, F)
        Motif activities of the training windows (for motif-motif correlations).
    k : int
        Pairs to return.
    taken : list of (int, int), optional
        Pairs chosen before: neither they nor pairs redundant with them are returned.
    ok : torch.Tensor, shape (F, F), bool, optional
        Pairs that passed their test (:func:`pair_scores`); None: all. Only the
        :data:`CANDIDATES_PER_PAIR` ``* (k + len(taken))`` entries of largest |score| are
        candidates.

    Returns
    -------
    list of (int, int)
        New pairs in decreasing |score|; a pair is skipped when it failed its test or a
        chosen (or taken) pair has both motifs correlated above :data:`REDUNDANT_R` with its
        own.
    """
    order = _candidates(c, CANDIDATES_PER_PAIR * (k + len(taken)))
    std_e, std_p = _standardized(ze), _standardized(zp)
    # per chosen pair, which motifs correlate above REDUNDANT_R with its two motifs (one
    # matrix-vector product each, instead of the full (F, F) correlation matrices)
    near_e: list[np.ndarray] = []
    near_p: list[np.ndarray] = []

    def add(i: int, j: int) -> None:
        near_e.append((std_e.T @ std_e[:, i]).abs().cpu().numpy() > REDUNDANT_R)
        near_p.append((std_p.T @ std_p[:, j]).abs().cpu().numpy() > REDUNDANT_R)

    for i, j in taken:
        add(i, j)
    chosen: list[tuple[int, int]] = []
    n = c.shape[1]
    for f in order.tolist():
        if len(chosen) == k:
            break
        i, j = divmod(f, n)
        if ok is not None and not ok[i, j]:
            continue
        if (i, j) in taken or any(ne[i] and np_[j] for ne, np_ in zip(near_e, near_p, strict=True)):
            continue
        chosen.append((i, j))
        add(i, j)
    return chosen


def _candidates(c: torch.Tensor, n: int) -> torch.Tensor:
    """Flat indices of the ``n`` entries of largest |c| (a matrix), largest first.

    C has (M * views)^2 entries, over 130 M for JASPAR 2024 with 13 views per matrix, and
    ``torch.topk`` of a few thousand of them took 17 s on 2 CPU cores (8 calls per warm-start
    fit, 90% of its time). Every ``step``-th entry of |C| (a step prime to the row length, so
    that all columns are sampled) gives a threshold that about :data:`_SAMPLE_SPARE` times n
    entries pass; the top n of those are the top n of C (exact: when fewer than n pass, the
    whole of C is searched), in under a second.
    """
    flat = c.abs().flatten()
    n = min(int(n), flat.numel())
    step = flat.numel() // (_SAMPLE_PER_PICK * max(n, 1))
    if step >= 2:
        while math.gcd(step, c.shape[-1]) != 1:
            step += 1
        sample = flat[::step]
        # entries of the top n expected in the sample: n / step
        k = min(sample.numel(), _SAMPLE_SPARE * (n // step) + _SAMPLE_SLACK)
        thr = sample.topk(k).values[-1]
        cand = (flat >= thr).nonzero().squeeze(1)
        if cand.numel() >= n:
            return cand[flat[cand].topk(n).indices]
    return flat.topk(n).indices


def pair_scores(
    ze: torch.Tensor,
    zp: torch.Tensor,
    ei: torch.Tensor,
    pi: torch.Tensor,
    y: torch.Tensor,
    logit: torch.Tensor,
    min_z: float,
    candidates: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Score of every E x P pair against the current fit, and whether its interaction test
    passes.

    ``C = Z_E^T R Z_P / n`` (R: residuals ``y - p`` summed per window pair) is minus the
    gradient of the mean loss with respect to the pair weights W. The test is the score test
    of the product adjusted for the pair's own two main effects (the efficient score
    ``U - (K_E / I_E) u_E - (K_P / I_P) u_P`` over its variance ``I - K_E^2 / I_E - K_P^2 /
    I_P``; I, K: Fisher information from ``p (1 - p)``, u: the main effects' scores). Without
    the adjustment a promoter motif that is almost constant over the windows turned its
    products into enhancer main effects that the L1 penalty had left out: they passed with
    weights of -1 to -27 and wrecked the held-out fit. A product whose variance is 90% its main
    effects' is not tested (its variance is floored at 10% of I). The variance is scaled by
    the dispersion ``sum R^2 / sum Q`` over window pairs (at least 1). The test is a stop, not a
    ranking: :func:`screen_pairs` still ranks by |C|.

    Parameters
    ----------
    ze, zp : torch.Tensor, shape (Ne, F), (Np, F)
        Motif activities of the training windows.
    ei, pi : torch.Tensor, shape (n,), int64
        Enhancer and promoter window of each pair.
    y, logit : torch.Tensor, shape (n,)
        0/1 labels and the current fit's log-odds.
    min_z : float
        The test passes when the adjusted ``|z| >= min_z`` (0: no test).
    candidates : int, optional
        Test only this many entries of largest |C| (the only ones :func:`screen_pairs`
        looks at) and report the others as failing; None: every entry. One (F, F) product
        instead of four: with 13 views per JASPAR matrix, F = 11,427 per side.

    Returns
    -------
    c : torch.Tensor, shape (F, F)
        C.
    ok : torch.Tensor, shape (F, F), bool, or None
        Where the test passes (None when ``min_z <= 0``).
    """
    n_e, n_p, n = ze.shape[0], zp.shape[0], y.numel()
    p = torch.sigmoid(logit)
    cell = ei * n_p + pi

    def per_window_pair(v: torch.Tensor) -> torch.Tensor:  # (n_e, n_p) sums, in a fixed order
        out = torch.bincount(cell, weights=v.double(), minlength=n_e * n_p)
        return out.view(n_e, n_p).to(v.dtype)

    rm = per_window_pair(y - p)
    c = ze.T @ rm @ zp  # (F, F): U, the pairs' scores
    if min_z <= 0:
        return c / n, None
    qm = per_window_pair(p * (1 - p))
    f_e, f_p = c.shape
    idx = torch.arange(c.numel()) if candidates is None else _candidates(c, candidates)
    ok = torch.zeros(c.numel(), dtype=torch.bool)
    # quasi-binomial dispersion over window pairs: one window pair's labels in several cells
    # go together, so n rows are worth fewer independent ones (one window pair positive in
    # all 6 cells of a benchmark at p = 0.1 would score z = 7.3 on its own)
    phi = max(float((rm * rm).sum() / qm.sum().clamp(min=1e-12)), 1.0)
    ze2, zp2 = ze * ze, zp * zp
    u_e, u_p = ze.T @ rm.sum(1), zp.T @ rm.sum(0)  # (F,): main effects' scores
    i_e = (ze2.T @ qm.sum(1)).clamp(min=1e-12)
    i_p = (zp2.T @ qm.sum(0)).clamp(min=1e-12)
    flat_c = c.flatten()
    for a in range(0, idx.numel(), _TEST_CHUNK):
        part = idx[a : a + _TEST_CHUNK]
        i, j = part // f_p, part % f_p
        q_zp, q_zp2 = qm @ zp[:, j], qm @ zp2[:, j]  # (Ne, K)
        k_e = (ze2[:, i] * q_zp).sum(0)  # information a product shares with its E motif
        k_p = (ze[:, i] * q_zp2).sum(0)  # ... and with its promoter motif
        info = (ze2[:, i] * q_zp2).sum(0)  # the product's own
        score = flat_c[part] - k_e * u_e[i] / i_e[i] - k_p * u_p[j] / i_p[j]
        var = torch.maximum(info - k_e**2 / i_e[i] - k_p**2 / i_p[j], 0.1 * info)
        ok[part] = (score.abs() >= min_z * (phi * var).sqrt()) & (info > 0)
    return c / n, ok.view(f_e, f_p)


def select_pairs(
    ze: torch.Tensor,
    zp: torch.Tensor,
    ei: torch.Tensor,
    pi: torch.Tensor,
    y: torch.Tensor,
    offset: torch.Tensor,
    k: int,
    rounds: int = SCREEN_ROUNDS,
    min_z: float = MIN_Z,
) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """Choose up to k E x P pairs by forward selection on the residuals, and fit their weights.

    Parameters
    ----------
    ze, zp : torch.Tensor, shape (Ne, F), (Np, F)
        Motif activities of the training windows.
    ei, pi : torch.Tensor, shape (n,), int64
        Enhancer and promoter window of each training pair.
    y : torch.Tensor, shape (n,)
        0/1 labels.
    offset : torch.Tensor, shape (n,)
        U_I without the interaction (log-odds).
    k : int
        Pairs at most (the interaction's rank).
    rounds : int
        Screening rounds (1: the k strongest entries of one screen).
    min_z : float
        Smallest |z| of a pair's adjusted score test (:func:`pair_scores`) for it to be
        taken, and of its weight's Wald test (:func:`wald_z`) for it to stay (0: no tests).
        With little data no pair may pass, and the interaction stays empty.

    Returns
    -------
    pairs : list of (int, int)
        (enhancer feature, promoter feature), in the order chosen.
    weights : torch.Tensor, shape (len(pairs),), float32
        Their ridge-logistic weights (prior SD :data:`SEED_PRIOR_SD`) with ``offset``.
    """
    chosen: list[tuple[int, int]] = []
    w = torch.zeros(0)
    logit = offset
    for r in range(max(1, rounds)):
        want = -(-(k - len(chosen)) // (max(1, rounds) - r))  # ceil: the rest spread evenly
        if want <= 0:
            break
        with torch.no_grad():
            n_cand = CANDIDATES_PER_PAIR * (want + len(chosen))
            c, ok = pair_scores(ze, zp, ei, pi, y, logit, min_z, n_cand)
        new = screen_pairs(c, ze, zp, want, chosen, ok)
        if not new:
            break
        chosen += new
        prod = _products(ze, zp, ei, pi, chosen)
        w = ridge_logistic(prod, y, offset, SEED_PRIOR_SD)
        logit = offset + prod @ w
    if chosen and min_z > 0:
        chosen, w = _prune(lambda ps: _products(ze, zp, ei, pi, ps), y, offset, chosen, w, min_z)
    return chosen, w


def _prune(
    products: Callable[[list[tuple[int, int]]], torch.Tensor],
    y: torch.Tensor,
    offset: torch.Tensor,
    chosen: list[tuple[int, int]],
    w: torch.Tensor,
    min_z: float,
) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """Backward elimination: while a chosen pair's Wald |z| (:func:`wald_z`, given the
    others) is under ``min_z``, drop the weakest and refit. Pairs screened in one round can
    share one signal (a strong pair and its relative on one side): the relative goes, and
    the pair it shared with keeps the whole weight."""
    while chosen:
        prod = products(chosen)
        z = wald_z(prod, w, offset + prod @ w, SEED_PRIOR_SD).abs()
        weakest = int(z.argmin())
        if float(z[weakest]) >= min_z:
            break
        chosen = chosen[:weakest] + chosen[weakest + 1 :]
        w = torch.zeros(0)
        if chosen:
            w = ridge_logistic(products(chosen), y, offset, SEED_PRIOR_SD)
    return chosen, w


def _products(
    ze: torch.Tensor,
    zp: torch.Tensor,
    ei: torch.Tensor,
    pi: torch.Tensor,
    pairs: list[tuple[int, int]],
) -> torch.Tensor:
    """Per training pair, the product of each chosen pair's two motif activities, (n, K)."""
    ii = torch.as_tensor([i for i, _ in pairs])
    jj = torch.as_tensor([j for _, j in pairs])
    return ze[:, ii][ei] * zp[:, jj][pi]


def wald_z(x: torch.Tensor, w: torch.Tensor, logit: torch.Tensor, sd: float) -> torch.Tensor:
    """Wald statistics ``w / se(w)`` of a ridge logistic fit, se from its curvature.

    Parameters
    ----------
    x : torch.Tensor, shape (n, K)
        The fitted columns.
    w : torch.Tensor, shape (K,)
        Their weights.
    logit : torch.Tensor, shape (n,)
        The fit's log-odds.
    sd : float
        The ridge prior's SD (its curvature ``1 / sd^2`` joins the Hessian).

    Returns
    -------
    torch.Tensor, shape (K,)
    """
    x = x.double()
    p = torch.sigmoid(logit.double())
    h = x.T @ (x * (p * (1 - p))[:, None]) + torch.eye(x.shape[1], dtype=x.dtype) / sd**2
    se = torch.linalg.inv(h).diagonal().clamp(min=1e-30).sqrt()
    return (w.double() / se).float()
