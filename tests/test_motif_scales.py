"""Held-out scales of U_I's parts: fitted from labels, applied to the model's parameters."""

from __future__ import annotations

import numpy as np
import torch

from epcli.model.motif_scales import MAX_SCALE, PARTS, apply_scales, fit_scales
from helpers import tiny_motif_model


def _parts(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {p: torch.randn(n, generator=g) for p in PARTS}


def test_fit_scales_recovers_the_scales_and_shift_of_a_logistic_rule():
    parts = _parts(20_000)
    true = {"enhancer": 0.5, "promoter": 1.0, "interaction": 2.0, "distance": 0.0}
    logit = -0.7 + 0.4 + sum(true[p] * parts[p] for p in PARTS)
    y = torch.rand(logit.shape, generator=torch.Generator().manual_seed(1)) < logit.sigmoid()
    got = fit_scales(parts, bias=-0.7, labels=y.float())
    for p in PARTS:
        assert abs(got["scales"][p] - true[p]) < 0.1, (p, got)
    assert abs(got["shift"] - 0.4) < 0.1


def test_scales_are_bounded_and_one_class_changes_nothing():
    parts = _parts(2_000)
    # a part that predicts against the labels cannot get a negative scale, nor a huge one
    y = (-parts["enhancer"] + 6.0 * parts["interaction"] > 0).float()
    got = fit_scales(parts, bias=0.0, labels=y)
    assert got["scales"]["enhancer"] == 0.0
    assert got["scales"]["interaction"] == MAX_SCALE
    same = fit_scales(parts, bias=0.0, labels=torch.ones(2_000))
    assert same == {"scales": dict.fromkeys(PARTS, 1.0), "shift": 0.0}
    # an absent part keeps scale 1
    part = fit_scales({"distance": parts["distance"]}, 0.0, (parts["distance"] > 0).float())
    assert part["scales"]["interaction"] == 1.0 and part["scales"]["distance"] > 1.0


def test_apply_scales_scales_each_part_of_u_i():
    m = tiny_motif_model(n_free_filters=0, interaction_rank=2)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in (m.w_e, m.w_p, m.u, m.v, m.dist, m.bias):
            p.copy_(torch.randn(p.shape, generator=g))
    f = m.env_dim
    ze, zp = torch.randn(5, f, generator=g), torch.randn(5, f, generator=g)
    ld = torch.linspace(3.7, 5.7, 5)

    def parts(model) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            e, p = model.window_terms(ze, "enhancer"), model.window_terms(zp, "promoter")
            out = model.combine_terms(e, p, ld)
        return {
            "enhancer": e["add"],
            "promoter": p["add"],
            "interaction": (e["fac"] * p["fac"]).sum(-1),
            "distance": model.distance_term(ld),
            "u_i": out["u_i"],
        }

    before = parts(m)
    fitted = {
        "scales": {"enhancer": 0.5, "promoter": 0.0, "interaction": 2.0, "distance": 1.5},
        "shift": 0.25,
    }
    bias = float(m.bias.detach())
    apply_scales(m, fitted)
    after = parts(m)
    want = bias + 0.25 + sum(fitted["scales"][p] * before[p] for p in PARTS)
    torch.testing.assert_close(after["u_i"], want)
    for p in PARTS:
        torch.testing.assert_close(after[p], fitted["scales"][p] * before[p])
    # a scale of 0 switches a part off: its motifs drop out of what the model scans
    assert not bool(m.w_p.any()) and np.isfinite(float(m.bias.detach()))
