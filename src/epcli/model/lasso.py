"""Full-batch proximal gradient for an L1-penalised smooth loss (FISTA with backtracking).

The warm start of the motif-grounded PRISM (:mod:`epcli.model.motif_fit`) fits U_I's
additive terms as an L1-penalised logistic regression on all training pairs at once. That
problem is convex, so it has one solution per penalty, and a solver that converges finds it:
the motifs whose evidence is weaker than the penalty get weight exactly 0, and the number kept
falls as the penalty grows.

Adam with a proximal step after each update (what the episodes use, and what the warm start
used before) does not converge to it: on a JASPAR benchmark (6,157 motif features per side,
45,850 pairs) its 120 steps left an objective of 0.973 at penalty 1e-3 (this solver: 0.499)
and 0.646 at 3e-2 (this solver: 0.541), with 8,683 and 599 non-zero weights where the
solution has 927 and 13 (docs/benchmarks.md).

:func:`fista` is Beck and Teboulle's accelerated proximal gradient with a backtracking line
search on the step size and O'Donoghue and Candes' adaptive restart (momentum is reset when
the objective rises), on any list of tensors; the loss is a closure, so the model's own
forward pass defines the problem.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

#: Iterations at most.
MAX_ITER = 2000
#: Stop when the objective changes by less than this (relative) on two accepted steps running.
TOL = 1e-7
#: The step size's inverse L starts here, doubles until the line search accepts a step, and
#: shrinks by :data:`L_DECAY` after each accepted one (so a step can grow again).
L_START = 1.0
L_DECAY = 0.95


@dataclass
class LassoResult:
    """How :func:`fista` ended.

    Attributes
    ----------
    iterations : int
        Gradient steps taken.
    objective : float
        Loss plus penalty at the solution.
    converged : bool
        Whether :data:`TOL` was met before ``max_iter``.
    """

    iterations: int
    objective: float
    converged: bool


def soft_threshold(x: torch.Tensor, thr: float) -> torch.Tensor:
    """The L1 proximal map: ``sign(x) * max(|x| - thr, 0)``, shape of ``x``."""
    return x.sign() * (x.abs() - thr).clamp(min=0.0)


def fista(
    params: Sequence[torch.Tensor],
    penalties: Sequence[float],
    loss_fn: Callable[[], torch.Tensor],
    max_iter: int = MAX_ITER,
    tol: float = TOL,
) -> LassoResult:
    """Minimise ``loss_fn() + sum_i penalties[i] * |params[i]|_1`` over ``params``, in place.

    Parameters
    ----------
    params : sequence of torch.Tensor
        Leaf tensors (``requires_grad``) that ``loss_fn`` may read (one it does not read stays
        as it is); their values on entry are the starting point, and on return the solution.
    penalties : sequence of float
        L1 penalty per tensor (0: unpenalised, e.g. an intercept).
    loss_fn : callable
        The smooth loss (a scalar tensor) at the current values of ``params``.
    max_iter : int
    tol : float
        Relative change of the objective that stops (on two accepted steps running).

    Returns
    -------
    LassoResult
    """
    params = list(params)
    lams = [float(v) for v in penalties]

    def load(xs: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, x in zip(params, xs, strict=True):
                p.copy_(x)

    def value(xs: list[torch.Tensor]) -> float:
        load(xs)
        with torch.no_grad():
            return float(loss_fn())

    def penalty(xs: list[torch.Tensor]) -> float:
        return sum(lam * float(x.abs().sum()) for lam, x in zip(lams, xs, strict=True) if lam)

    def prox_step(ys: list[torch.Tensor], gs: list[torch.Tensor], step: float):
        return [
            soft_threshold(y - step * g, step * lam) if lam else y - step * g
            for y, g, lam in zip(ys, gs, lams, strict=True)
        ]

    x = [p.detach().clone() for p in params]
    y = [v.clone() for v in x]
    t, lip = 1.0, L_START
    obj = value(x) + penalty(x)
    calm, it, fresh = 0, 0, True
    for it in range(1, max_iter + 1):
        load(y)
        with torch.enable_grad():
            fy = loss_fn()
            grads = torch.autograd.grad(fy, params, allow_unused=True)
        # a tensor the loss does not read (e.g. a switched-off term) has gradient 0
        grads = [
            torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)
        ]
        fy = float(fy.detach())
        while True:  # backtracking: the quadratic model at y must bound the loss
            xn = prox_step(y, grads, 1.0 / lip)
            d = [a - b for a, b in zip(xn, y, strict=True)]
            lin = sum(float((g * v).sum()) for g, v in zip(grads, d, strict=True))
            quad = sum(float((v * v).sum()) for v in d)
            fn = value(xn)
            if fn <= fy + lin + 0.5 * lip * quad + 1e-12 * abs(fy) or quad == 0.0:
                break
            lip *= 2.0
        new = fn + penalty(xn)
        if new > obj and not fresh:  # adaptive restart: drop the momentum, step again from x
            t, y, calm, fresh = 1.0, [v.clone() for v in x], 0, True
            continue
        fresh = False  # (a step from x itself is kept: it can only rise by rounding)
        tn = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y = [a + (t - 1.0) / tn * (a - b) for a, b in zip(xn, x, strict=True)]
        calm = calm + 1 if obj - new <= tol * max(1.0, abs(new)) else 0
        x, t, obj = xn, tn, new
        lip *= L_DECAY
        if calm >= 2:
            load(x)
            return LassoResult(it, obj, True)
    load(x)
    return LassoResult(it, obj, False)
