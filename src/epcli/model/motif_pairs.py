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
"""

from __future__ import annotations

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


def ridge_logistic(x: torch.Tensor, y: torch.Tensor, off: torch.Tensor, sd: float) -> torch.Tensor:
    """Ridge logistic regression with an offset: the MAP coefficients of
    ``logit = off + x @ d + c`` with ``d ~ N(0, sd^2 I)`` and a free intercept c (L-BFGS in
    float64, :data:`RIDGE_ITERS` iterations).

    Parameters
    ----------
    x : torch.Tensor, shape (n, D)
    y : torch.Tensor, shape (n,)
        0/1 labels.
    off : torch.Tensor, shape (n,)
        The offset (log-odds).
    sd : float
        Prior SD of the coefficients.

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
        logit = off + x @ d[:-1] + d[-1]
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
) -> list[tuple]:
    """The k strongest entries of a pair score matrix, skipping redundant pairs.

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

    Returns
    -------
    list of (int, int)
        New pairs in decreasing |score|; a pair is skipped when a chosen (or taken) pair has
        both motifs correlated above :data:`REDUNDANT_R` with its own.
    """
    flat = c.abs().flatten()
    # topk, not a full sort: C has (M * VIEWS)^2 entries (12 M for JASPAR 2024)
    order = flat.topk(min(200 * (k + len(taken)), flat.numel())).indices
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
        if (i, j) in taken or any(ne[i] and np_[j] for ne, np_ in zip(near_e, near_p, strict=True)):
            continue
        chosen.append((i, j))
        add(i, j)
    return chosen


def select_pairs(
    ze: torch.Tensor,
    zp: torch.Tensor,
    ei: torch.Tensor,
    pi: torch.Tensor,
    y: torch.Tensor,
    offset: torch.Tensor,
    k: int,
    rounds: int = SCREEN_ROUNDS,
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

    Returns
    -------
    pairs : list of (int, int)
        (enhancer feature, promoter feature), in the order chosen.
    weights : torch.Tensor, shape (len(pairs),), float32
        Their ridge-logistic weights (prior SD :data:`SEED_PRIOR_SD`) with ``offset``.
    """
    chosen: list[tuple[int, int]] = []
    w = torch.zeros(0)
    n_e, n_p, n = ze.shape[0], zp.shape[0], y.numel()
    logit = offset
    for r in range(max(1, rounds)):
        want = -(-(k - len(chosen)) // (max(1, rounds) - r))  # ceil: the rest spread evenly
        if want <= 0:
            break
        with torch.no_grad():
            res = y - torch.sigmoid(logit)
            rm = torch.zeros(n_e, n_p).index_put_((ei, pi), res, accumulate=True)
            c = ze.T @ rm @ zp / n  # (F, F)
        new = screen_pairs(c, ze, zp, want, chosen)
        if not new:
            break
        chosen += new
        ii = torch.as_tensor([i for i, _ in chosen])
        jj = torch.as_tensor([j for _, j in chosen])
        prod = ze[:, ii][ei] * zp[:, jj][pi]  # (n, K)
        w = ridge_logistic(prod, y, offset, SEED_PRIOR_SD)
        logit = offset + prod @ w
    return chosen, w
