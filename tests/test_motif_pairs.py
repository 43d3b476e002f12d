"""E x P pair screening and forward selection of the motif prism's interaction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from epcli.model.motif_pairs import (
    MIN_Z,
    pair_scores,
    ridge_logistic,
    screen_pairs,
    select_pairs,
)

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


def _hand_z(ze, zp, ei, pi, y, logit, i: int, j: int) -> tuple[float, float]:
    """A pair's score test by hand, row by row: unadjusted, and adjusted for its two main
    effects and scaled by the dispersion over window pairs (as pair_scores documents)."""
    p = torch.sigmoid(logit).double()
    r, q = y.double() - p, p * (1 - p)
    a, b = ze[ei, i].double(), zp[pi, j].double()
    x = a * b
    plain = float((x * r).sum() / (x * x * q).sum().sqrt())
    ie, ip, ke, kp = (a * a * q).sum(), (b * b * q).sum(), (x * a * q).sum(), (x * b * q).sum()
    score = (x * r).sum() - ke / ie * (a * r).sum() - kp / ip * (b * r).sum()
    info = (x * x * q).sum()
    var = torch.maximum(info - ke**2 / ie - kp**2 / ip, 0.1 * info)
    key = (ei * zp.shape[0] + pi).numpy()
    _, inv = np.unique(key, return_inverse=True)
    rs = np.bincount(inv, weights=r.numpy())
    phi = max(float((rs**2).sum() / q.sum()), 1.0)
    return plain, float(score / (phi * var).sqrt())


def test_pair_scores_match_a_hand_computed_adjusted_score_test():
    ze, zp, ei, pi, y, off = _data(3)
    logit = off + 0.3 * ze[ei, B] * zp[pi, B]  # a current fit that knows part of B x B
    c, ok = pair_scores(ze, zp, ei, pi, y, logit, min_z=MIN_Z)
    n = y.numel()
    z = torch.zeros(6, 6)
    for i in range(6):
        for j in range(6):
            x = (ze[ei, i] * zp[pi, j]).double()
            grad = float((x * (y - torch.sigmoid(logit))).sum()) / n  # minus the gradient
            assert abs(float(c[i, j]) - grad) < 1e-5
            z[i, j] = _hand_z(ze, zp, ei, pi, y, logit, i, j)[1]
    assert float(z[A, A]) > 20 and float(z[B, B]) > MIN_Z
    assert torch.equal(ok, z.abs() >= MIN_Z)
    assert pair_scores(ze, zp, ei, pi, y, logit, min_z=0.0)[1] is None


def test_a_main_effect_through_an_almost_constant_partner_fails_the_test():
    """A promoter motif that is nearly constant turns its products into the enhancer
    motif's main effect: the plain score test passes it, the adjusted one does not."""
    ze, zp, ei, pi, _, off = _data(5)
    rng = np.random.default_rng(5)
    zp[:, 5] = 0.05 + 0.001 * torch.as_tensor(rng.standard_normal(zp.shape[0]))
    logit = off + 1.0 * ze[ei, 3]  # an enhancer main effect the current fit lacks
    y = torch.as_tensor(rng.random(ei.numel()) < torch.sigmoid(logit).numpy(), dtype=torch.float32)
    plain, adjusted = _hand_z(ze, zp, ei, pi, y, off, 3, 5)
    assert plain > 20 and abs(adjusted) < 3
    _, ok = pair_scores(ze, zp, ei, pi, y, off, min_z=MIN_Z)
    assert not ok[3, 5]


def test_selection_stops_when_no_pair_passes_its_score_test():
    ze, zp, ei, pi, y, off = _data()
    # more ranks than real pairs: the two planted pairs are kept, no noise pair joins them
    chosen, w = select_pairs(ze, zp, ei, pi, y, off, k=8, rounds=4)
    assert chosen == [(A, A), (B, B)] and w.shape == (2,)
    # labels that no pair explains: nothing is chosen (without the test, k noise pairs are)
    rng = np.random.default_rng(4)
    y0 = torch.as_tensor(rng.random(y.numel()) < torch.sigmoid(off).numpy(), dtype=torch.float32)
    none, w0 = select_pairs(ze, zp, ei, pi, y0, off, k=4)
    assert none == [] and w0.numel() == 0
    assert len(select_pairs(ze, zp, ei, pi, y0, off, k=4, min_z=0.0)[0]) == 4


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


@pytest.mark.parametrize("noise", [30, 400])
def test_testing_only_the_candidates_agrees_with_testing_every_pair(noise):
    # 400: C has 163,216 entries, so the 50 candidates are found by a sampled threshold
    ze, zp, ei, pi, y, off = _data(6)
    rng = np.random.default_rng(6)
    # more features: the six, then noise features on each side
    ze = torch.cat([ze, torch.as_tensor(rng.standard_normal((600, noise)), dtype=torch.float32)], 1)
    zp = torch.cat([zp, torch.as_tensor(rng.standard_normal((300, noise)), dtype=torch.float32)], 1)
    c, ok = pair_scores(ze, zp, ei, pi, y, off, min_z=2.0)
    c5, ok5 = pair_scores(ze, zp, ei, pi, y, off, min_z=2.0, candidates=50)
    assert torch.equal(c, c5)
    top = c.abs().flatten().topk(50).indices
    assert torch.equal(ok5.flatten()[top], ok.flatten()[top])
    assert int(ok5.sum()) == int(ok.flatten()[top].sum()) and int(ok.sum()) > int(ok5.sum())


def test_ridge_logistic_per_window_equals_per_row():
    rng = np.random.default_rng(7)
    wins = torch.as_tensor(rng.standard_normal((50, 3)), dtype=torch.float32)
    rows = torch.as_tensor(rng.integers(0, 50, 4_000))
    off = torch.as_tensor(rng.standard_normal(4_000), dtype=torch.float32)
    p = torch.sigmoid(off + wins[rows] @ torch.tensor([0.8, 0.0, -0.4]))
    y = (torch.as_tensor(rng.random(4_000), dtype=torch.float32) < p).float()
    per_row = ridge_logistic(wins[rows], y, off, 2.0)
    per_window = ridge_logistic(wins, y, off, 2.0, rows)
    assert torch.allclose(per_row, per_window, atol=1e-4)
    assert abs(float(per_window[0]) - 0.8) < 0.15
