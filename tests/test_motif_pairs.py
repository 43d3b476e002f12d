"""E x P pair screening and forward selection of the motif prism's interaction."""

from __future__ import annotations

import numpy as np
import torch

from epcli.model.motif_pairs import ridge_logistic, screen_pairs, select_pairs

# features: 0 = A, 1 = a relative of A (r ~ 0.5), 2 = B, 3-5 = noise (both sides alike)
A, A_REL, B = 0, 1, 2


def _windows(rng: np.random.Generator, n: int) -> torch.Tensor:
    z = rng.standard_normal((n, 6))
    z[:, A_REL] = 0.5 * z[:, A] + np.sqrt(0.75) * z[:, A_REL]
    return torch.as_tensor((z - z.mean(0)) / z.std(0), dtype=torch.float32)


def _data(seed: int = 0):
    """A strong A x A pair and a weaker B x B pair; the offset knows neither."""
    rng = np.random.default_rng(seed)
    ze, zp = _windows(rng, 600), _windows(rng, 300)
    n = 40_000
    ei = torch.as_tensor(rng.integers(0, 600, n))
    pi = torch.as_tensor(rng.integers(0, 300, n))
    logit = -1.0 + 2.5 * ze[ei, A] * zp[pi, A] + 0.7 * ze[ei, B] * zp[pi, B]
    y = torch.as_tensor(rng.random(n) < torch.sigmoid(logit).numpy(), dtype=torch.float32)
    return ze, zp, ei, pi, y, torch.full((n,), -1.0)


def test_screen_skips_taken_and_redundant_pairs():
    rng = np.random.default_rng(1)
    ze, zp = _windows(rng, 500), _windows(rng, 400)
    ze[:, 4] = ze[:, A] + 0.01 * ze[:, 4]  # a near copy of A on both sides
    zp[:, 4] = zp[:, A] + 0.01 * zp[:, 4]
    c = torch.zeros(6, 6)
    c[A, A], c[4, 4], c[B, 3], c[A_REL, A_REL] = 1.0, 0.9, -0.8, 0.7
    assert screen_pairs(c, ze, zp, 2) == [(A, A), (B, 3)]  # (4, 4) is A x A again
    assert screen_pairs(c, ze, zp, 2, taken=[(A, A)]) == [(B, 3), (A_REL, A_REL)]
    assert screen_pairs(c, ze, zp, 2, taken=[(B, 3)]) == [(A, A), (A_REL, A_REL)]
    assert (4, 4) not in screen_pairs(c, ze, zp, 10)


def test_forward_selection_finds_the_pair_a_strong_pairs_relative_hides():
    ze, zp, ei, pi, y, off = _data()
    once, _ = select_pairs(ze, zp, ei, pi, y, off, k=2, rounds=1)
    # screened once, the strong pair's relative outranks the weaker real pair
    assert once[0] == (A, A) and (B, B) not in once
    chosen, w = select_pairs(ze, zp, ei, pi, y, off, k=2, rounds=2)
    assert chosen == [(A, A), (B, B)]
    assert abs(float(w[0]) - 2.5) < 0.25 and abs(float(w[1]) - 0.7) < 0.15


def test_ridge_logistic_recovers_weights_and_shrinks_with_a_tight_prior():
    rng = np.random.default_rng(2)
    x = torch.as_tensor(rng.standard_normal((20_000, 2)), dtype=torch.float32)
    off = torch.as_tensor(rng.standard_normal(20_000), dtype=torch.float32)
    y = (
        torch.rand(20_000, generator=torch.Generator().manual_seed(0))
        < torch.sigmoid(off + x @ torch.tensor([1.0, -0.5]) + 0.3)
    ).float()
    d = ridge_logistic(x, y, off, 10.0)
    assert torch.allclose(d, torch.tensor([1.0, -0.5]), atol=0.06)
    tight = ridge_logistic(x, y, off, 0.001)
    assert tight.abs().max() < 0.05
