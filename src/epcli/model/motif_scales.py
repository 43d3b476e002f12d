"""Held-out scales of U_I's parts: a relaxed refit of what one penalty shrank unevenly.

The warm start (:mod:`epcli.model.motif_fit`) fits U_I's parts under one L1 penalty, and the
E x P pairs' weights under a ridge prior, so the parts come out shrunk by different amounts:
on the unseen cells of both development rules of the semi-synthetic benchmark, the trained
model ranked better with its interaction term larger (x1.6: +0.016 / +0.014 zero-shot AUPR)
and its additive enhancer term smaller (x0.7: +0.006 / +0.011; docs/benchmarks.md).

As a relaxed lasso refits the selected variables without the penalty, the warm start fits
one non-negative scale per part (and a shift of the bias) by an unpenalised logistic
regression on the training cells' *held-out genome block*, with U_I fitted on the other
pairs, and applies them to the final model: five numbers from thousands of held-out pairs.
Validation cells are not used (nothing is fitted on them). The held-out block's scales come
out milder than the unseen cells' pattern (on ``jaspar:1``: enhancer 1.03, promoter 0.62,
interaction 1.13), and moved the unseen cells' AUPR by +0.003 on average: a safeguard more
than a gain, measured in docs/benchmarks.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: U_I's parts, in the order of :func:`fit_scales`'s coefficients.
PARTS = ("enhancer", "promoter", "interaction", "distance")
#: Bounds of a scale: 0 switches a part off; the upper bound keeps a badly fitted part from
#: being blown up.
MAX_SCALE = 3.0
FIT_ITERS = 100


def fit_scales(parts: dict[str, torch.Tensor], bias: float, labels: torch.Tensor) -> dict:
    """Scales of U_I's parts and a bias shift, fitted on held-out pairs.

    Parameters
    ----------
    parts : dict of str -> torch.Tensor, shape (n,)
        Each of :data:`PARTS` present, per held-out pair (absent parts keep scale 1).
    bias : float
        U_I's bias.
    labels : torch.Tensor, shape (n,)
        0/1.

    Returns
    -------
    dict
        ``scales`` (part -> float in [0, :data:`MAX_SCALE`]) and ``shift`` (added to the bias).
        All scales 1 and shift 0 when the labels hold one class only.
    """
    names = [p for p in PARTS if p in parts]
    keep = {"scales": {p: 1.0 for p in PARTS}, "shift": 0.0}
    y = labels.detach().double().reshape(-1)
    if not names or y.numel() == 0 or y.min() == y.max():
        return keep
    x = torch.stack([parts[p].detach().double().reshape(-1) for p in names], 1)  # (n, P)
    theta = torch.cat([torch.ones(len(names)), torch.zeros(1)]).double().requires_grad_(True)
    opt = torch.optim.LBFGS([theta], max_iter=FIT_ITERS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logit = bias + theta[-1] + x @ theta[:-1]
        loss = F.binary_cross_entropy_with_logits(logit, y)
        loss.backward()
        return loss

    opt.step(closure)
    s = theta.detach()[:-1].clamp(0.0, MAX_SCALE)
    if not torch.isfinite(theta.detach()).all():
        return keep
    keep["scales"].update({p: float(v) for p, v in zip(names, s, strict=True)})
    # the intercept that goes with the clamped scales
    shift = theta.detach()[-1] + x.mean(0) @ (theta.detach()[:-1] - s)
    keep["shift"] = float(shift)
    return keep


@torch.no_grad()
def apply_scales(model, fitted: dict) -> None:
    """Multiply the model's parameters of each part by its scale; shift the bias.

    Parameters
    ----------
    model : MotifPrismModel
        ``w_e`` (enhancer), ``w_p`` (promoter), ``u`` (interaction: U V^T scales with U),
        ``dist`` (distance), ``bias``.
    fitted : dict
        :func:`fit_scales`'s result.
    """
    s = fitted["scales"]
    model.w_e.mul_(s["enhancer"])
    model.w_p.mul_(s["promoter"])
    model.u.mul_(s["interaction"])
    model.dist.mul_(s["distance"])
    model.bias.add_(fitted["shift"])
    model.forget_plans()
