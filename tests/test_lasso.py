"""The full-batch L1 solver of the warm start: it reaches the lasso's solution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from epcli.model.lasso import fista, soft_threshold


def test_soft_threshold_by_hand():
    x = torch.tensor([-3.0, -0.5, 0.0, 0.4, 2.0])
    assert soft_threshold(x, 1.0).tolist() == [-2.0, 0.0, 0.0, 0.0, 1.0]


def test_separable_quadratic_has_the_closed_form_solution():
    """0.5 |w - a|^2 + lam |w|_1 is solved by soft_threshold(a, lam); b is unpenalised."""
    a = torch.tensor([2.0, -0.3, 0.7, -1.5, 0.05])
    w = torch.zeros(5, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)

    def loss() -> torch.Tensor:
        return 0.5 * ((w - a) ** 2).sum() + 0.5 * ((b - 3.0) ** 2).sum()

    res = fista([w, b], [0.5, 0.0], loss)
    assert res.converged
    assert w.detach().tolist() == pytest.approx([1.5, 0.0, 0.2, -1.0, 0.0], abs=1e-5)
    assert float(b.detach()) == pytest.approx(3.0, abs=1e-5)
    assert res.objective == pytest.approx(0.5 * (0.25 * 3 + 0.09 + 0.0025) + 0.5 * 2.7, abs=1e-5)


def _problem(seed: int = 0, n: int = 600, d: int = 30):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    x[:, 1] = 0.8 * x[:, 0] + 0.6 * x[:, 1]  # correlated features, as related motifs are
    beta = np.zeros(d)
    beta[[0, 3, 7]] = [1.5, -1.0, 0.7]
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ beta - 0.5)))).astype(float)
    return x, y


def _fit(x: np.ndarray, y: np.ndarray, lam: float):
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    res = fista([w, b], [lam, 0.0], lambda: F.binary_cross_entropy_with_logits(xt @ w + b, yt))
    return w.detach().numpy(), float(b.detach()), res


def test_solution_meets_the_lasso_optimality_conditions():
    """Zero weights: |gradient| <= lam; non-zero ones: gradient = -lam * sign(w)."""
    x, y = _problem(seed=1)
    lam = 0.01
    w, b, _ = _fit(x, y, lam)
    p = 1 / (1 + np.exp(-(x @ w + b)))
    grad = x.T @ (p - y) / len(y)
    on = w != 0
    assert on.sum() >= 3
    np.testing.assert_allclose(grad[on], -lam * np.sign(w[on]), atol=1e-4)
    assert np.all(np.abs(grad[~on]) <= lam + 1e-4)
    assert abs((p - y).mean()) < 1e-5  # the unpenalised intercept is at its optimum


def test_larger_penalty_keeps_fewer_weights():
    x, y = _problem(seed=2)
    lam_max = np.abs(x.T @ (y.mean() - y)).max() / len(y)  # the largest |gradient| at w = 0
    counts = [int((_fit(x, y, lam)[0] != 0).sum()) for lam in (0.002, 0.01, 0.05, 1.01 * lam_max)]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > counts[2] > 0
    assert counts[-1] == 0  # above it nothing is kept


def test_a_tensor_the_loss_does_not_read_is_left_as_it_is():
    """A switched-off term (e.g. no distance term) is a parameter the loss never reads."""
    a = torch.tensor([1.0, -2.0])
    w = torch.zeros(2, requires_grad=True)
    unused = torch.tensor([0.5, 0.25], requires_grad=True)

    def loss() -> torch.Tensor:
        return 0.5 * ((w - a) ** 2).sum()

    res = fista([w, unused], [0.1, 0.0], loss)
    assert res.converged
    assert w.detach().tolist() == pytest.approx([0.9, -1.9], abs=1e-5)
    assert unused.detach().tolist() == [0.5, 0.25]
