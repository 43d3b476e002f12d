"""Losses of episodic training: BCE, pairwise ranking, auxiliary U_I BCE, HSIC."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


def bce_loss(logit: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy with logits.

    Parameters
    ----------
    logit : torch.Tensor, shape (B,)
    y : torch.Tensor, shape (B,)
        Labels 0/1 (any dtype).

    Returns
    -------
    torch.Tensor, scalar
    """
    return F.binary_cross_entropy_with_logits(logit, y.to(logit.dtype))


def ranking_loss(logit: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pairwise logistic ranking loss over every positive-negative pair of the batch.

    ``mean_{i: y_i=1, j: y_j=0} log(1 + exp(-(logit_i - logit_j)))``; 0 (still
    differentiable) when the batch lacks one of the classes.

    Parameters
    ----------
    logit : torch.Tensor, shape (B,)
    y : torch.Tensor, shape (B,)
        Labels 0/1.

    Returns
    -------
    torch.Tensor, scalar
    """
    pos = logit[y == 1]
    neg = logit[y == 0]
    if pos.numel() == 0 or neg.numel() == 0:
        return logit.sum() * 0.0
    return F.softplus(-(pos[:, None] - neg[None, :])).mean()


def aux_ui_loss(u_i: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Auxiliary BCE on U_I alone (keeps the zero-shot path good); shapes as :func:`bce_loss`."""
    return bce_loss(u_i, y)


def hsic(x: torch.Tensor, cell_onehot: torch.Tensor) -> torch.Tensor:
    """Biased HSIC between features and cell identity.

    ``HSIC = tr(K H L H) / (n - 1)^2`` with ``K`` a Gaussian kernel on ``x`` (bandwidth by
    the median heuristic: ``2 sigma^2`` = the (lower) median of the non-zero pairwise squared
    distances, detached), ``L = C C^T`` the linear kernel on the one-hot cell matrix and ``H`` the
    centring matrix.

    Parameters
    ----------
    x : torch.Tensor, shape (n, d)
    cell_onehot : torch.Tensor, shape (n, n_cells)

    Returns
    -------
    torch.Tensor, scalar; 0 when fewer than two cells are present or n < 2.
    """
    n = x.shape[0]
    c = cell_onehot.to(x.dtype)
    if n < 2 or int((c.sum(0) > 0).sum()) < 2:
        return x.sum() * 0.0
    d2 = torch.cdist(x, x).pow(2)
    off = d2[~torch.eye(n, dtype=torch.bool, device=x.device)]
    off = off[off > 0]
    bw = off.median().detach() if off.numel() else x.new_tensor(1.0)
    k = torch.exp(-d2 / bw)
    kc = k - k.mean(0, keepdim=True)
    kc = kc - kc.mean(1, keepdim=True)
    lc = c - c.mean(0, keepdim=True)  # H C, so tr(K H C C^T H) = sum((H K H) * (HC)(HC)^T)
    return (kc * (lc @ lc.T)).sum() / (n - 1) ** 2


@dataclass
class LossWeights:
    """Weights of the episode loss terms."""

    bce: float = 1.0
    rank: float = 0.5
    aux_ui: float = 0.5
    hsic: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """Plain dict of the weights."""
        return asdict(self)


def episode_loss(
    out: dict[str, torch.Tensor],
    y: torch.Tensor,
    cell_onehot: torch.Tensor | None,
    w: LossWeights,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss on a query batch.

    Parameters
    ----------
    out : dict
        A model's forward output: ``logit`` (B,), ``u_i`` (B,), ``ui_feat`` (B, d_z).
    y : torch.Tensor, shape (B,)
        Labels 0/1.
    cell_onehot : torch.Tensor, shape (B, n_cells), optional
        Cell identity of each query pair, for the HSIC term (skipped when None or weight 0).
    w : LossWeights

    Returns
    -------
    total : torch.Tensor, scalar
        ``w.bce*bce + w.rank*rank + w.aux_ui*aux_ui + w.hsic*hsic``.
    parts : dict of str to float
        Unweighted ``bce``, ``rank``, ``aux_ui``, ``hsic`` and the weighted ``total``.
    """
    logit = out["logit"]
    y = y.to(device=logit.device)
    terms: dict[str, torch.Tensor] = {
        "bce": bce_loss(logit, y),
        "rank": ranking_loss(logit, y),
    }
    terms["aux_ui"] = aux_ui_loss(out["u_i"], y) if w.aux_ui else logit.new_zeros(())
    if w.hsic and cell_onehot is not None and out.get("ui_feat") is not None:
        terms["hsic"] = hsic(out["ui_feat"], cell_onehot.to(logit.device))
    else:
        terms["hsic"] = logit.new_zeros(())
    total = (
        w.bce * terms["bce"]
        + w.rank * terms["rank"]
        + w.aux_ui * terms["aux_ui"]
        + w.hsic * terms["hsic"]
    )
    parts = {k: float(v.detach()) for k, v in terms.items()}
    parts["total"] = float(total.detach())
    return total, parts
