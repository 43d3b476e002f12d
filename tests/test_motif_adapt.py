"""The motif prism's cell adaptation: a MAP direction over TFs with a prior from training cells."""

from __future__ import annotations

import numpy as np
import torch

from epcli.core.metrics import aupr
from epcli.model.config import ModelConfig
from epcli.model.motif import MotifPrismModel
from epcli.model.motif_adapt import direction_prototype, fit_direction
from epcli.model.motif_read import prototype_tfs
from epcli.model.motif_sites import VIEWS


def _cell(n: int, seed: int, active: int = 2, strength: float = 1.5):
    """Pairs of a cell whose log-odds get ``strength * e[:, active]`` on top of U_I."""
    g = torch.Generator().manual_seed(seed)
    env = torch.randn(n, 6, generator=g)
    u_i = torch.randn(n, generator=g)
    logit = u_i + strength * env[:, active] - 1.0
    y = (torch.rand(n, generator=g) < torch.sigmoid(logit)).long()
    return env, u_i, y


def _basis() -> torch.Tensor:
    b = torch.zeros(6)
    b[2] = b[4] = 1.0  # training cells differed on motifs 2 and 4 only
    return b


def test_direction_found_from_a_few_pairs_and_helps_on_new_pairs():
    env, u_i, y = _cell(96, 0)
    delta, centre = fit_direction(env, y, u_i, _basis(), 2.0, 3.0, 1 / 3.0, 1.0)
    # only the basis directions can move; the active motif's the largest
    assert delta[[0, 1, 3, 5]].abs().max() == 0.0
    assert delta[2] > 0.5 and delta[2] > 3 * delta[4].abs()
    torch.testing.assert_close(centre, env.mean(0))
    te, tu, ty = _cell(4000, 1)
    proto = direction_prototype(delta, centre)
    m = MotifPrismModel(
        ModelConfig(
            kind="prism",
            motif_ids=["a"] * 6,
            motif_names=["a"] * 6,
            motif_width=4,
            n_free_filters=0,
        )
    )
    with torch.no_grad():
        m.re_scale_raw.fill_(float(np.log(np.expm1(1 / 3.0))))
        r = m.r_e(te, proto)
    assert aupr(ty.numpy(), (tu - r).numpy()) > aupr(ty.numpy(), tu.numpy()) + 0.03
    # the prototype's linear R_E is -(e - e_bar) . delta
    lin = m.r_e_linear(te, proto)
    torch.testing.assert_close(lin, -((te - centre) @ delta), rtol=1e-4, atol=1e-4)


def test_prior_strength_and_no_prior_mean_no_adaptation():
    env, u_i, y = _cell(96, 2)
    b = _basis()
    weak = fit_direction(env, y, u_i, b, 4.0, 3.0, 1 / 3.0, 1.0)[0]
    strong = fit_direction(env, y, u_i, b, 0.1, 3.0, 1 / 3.0, 1.0)[0]
    assert strong.abs().sum() < 0.5 * weak.abs().sum()
    assert fit_direction(env, y, u_i, b, 0.0, 3.0, 1 / 3.0, 1.0)[0].abs().sum() == 0
    assert fit_direction(env, y, u_i, torch.zeros(6), 2.0, 3.0, 1 / 3.0, 1.0)[0].abs().sum() == 0


def test_unknown_labels_ignored_and_inference_mode_works():
    env, u_i, y = _cell(96, 3)
    ref = fit_direction(env, y, u_i, _basis(), 2.0, 3.0, 1 / 3.0, 1.0)
    env2 = torch.cat([env, torch.randn(10, 6)])
    y2 = torch.cat([y, torch.full((10,), -1)])
    u2 = torch.cat([u_i, torch.randn(10)])
    with torch.inference_mode():
        got = fit_direction(env2, y2, u2, _basis(), 2.0, 3.0, 1 / 3.0, 1.0)
    torch.testing.assert_close(got[0], ref[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got[1], ref[1])
    none = fit_direction(env, torch.full((96,), -1), u_i, _basis(), 2.0, 3.0, 1 / 3.0, 1.0)
    assert none[0].abs().sum() == 0 and none[1].abs().sum() == 0


def test_model_prototype_uses_u_i_and_names_the_active_tf():
    ids = [f"MA{i}" for i in range(6)]
    cfg = ModelConfig(
        kind="prism", motif_ids=ids, motif_names=list("ABCDEF"), motif_width=4, n_free_filters=0
    )
    m = MotifPrismModel(cfg)
    view = torch.arange(6) * VIEWS  # each motif's log-odds feature; consensus views unused
    with torch.no_grad():
        m.gate.fill_(1.0)
        m.motif_sd.zero_()
        m.motif_sd[view] = _basis()
        m.re_prior_sd.fill_(2.0)
    env6, u_i, y = _cell(200, 4)
    env = torch.zeros(len(env6), m.env_dim)
    env[:, view] = env6
    proto = m.make_prototype(env, y, u_i).detach().numpy()
    fav, _ = prototype_tfs(m, proto)
    assert fav[0]["name"] == "C"
    # without U_I: the class means of the mixin
    cm = m.make_prototype(env, y)
    torch.testing.assert_close(cm[1], env[y == 1].mean(0))


def test_cell_prior_gates_the_motif_whose_effect_differs_between_cells():
    from epcli.model.motif_fit import CellPrior, Pairs

    g = torch.Generator().manual_seed(0)
    n_win, n_mot, n = 300, 40, 6000
    ze = torch.randn(n_win, n_mot, generator=g)
    ei = torch.randint(0, n_win, (n,), generator=g)
    cells = np.repeat(np.arange(4), n // 4)
    # motif 7 raises the odds in cells 0 and 2 and lowers them in 1 and 3; motif 3 everywhere
    sign = torch.as_tensor(np.where(cells % 2 == 0, 1.0, -1.0), dtype=torch.float32)
    logit = 1.2 * sign * ze[ei, 7] + 0.8 * ze[ei, 3] - 1.0
    y = (torch.rand(n, generator=g) < torch.sigmoid(logit)).float()
    offset = 0.8 * ze[ei, 3] - 1.0  # U_I already holds what every cell shares
    pr = Pairs(ei, torch.zeros(n, dtype=torch.long), torch.zeros(n), y)
    cp = CellPrior(ze, offset, pr, cells)
    gate, scale = cp.prior(np.arange(n), 0.05)
    assert gate.sum() == 32 and gate[7] == 1.0
    others = torch.cat([scale[:7], scale[8:]])
    assert int(scale.argmax()) == 7 and scale[7] > 5 * others.max()
    assert scale[3] < 0.2 * scale[7]  # shared by every cell: U_I's, not R_E's
    # leaving cells out: with only one cell left there is no spread to learn from
    assert cp.prior(np.arange(n), 0.05, skip=0) is not None
    one = np.flatnonzero(cells < 2)
    assert cp.prior(one, 0.05, skip=1) is None


def test_prior_is_centred_on_the_population_direction():
    env, u_i, y = _cell(96, 5)
    pop = torch.tensor([0.0, 0.0, -0.4, 0.0, 0.7, 0.0])
    tight = fit_direction(env, y, u_i, _basis(), 1e-4, 3.0, 1 / 3.0, 1.0, prior_delta=pop)[0]
    torch.testing.assert_close(tight, pop, rtol=0, atol=1e-3)
    off = fit_direction(env, y, u_i, _basis(), 0.0, 3.0, 1 / 3.0, 1.0, prior_delta=pop)[0]
    torch.testing.assert_close(off, pop)
    # the data pull motif 2 up from the population's -0.4 (the cell's motif raises its odds)
    free = fit_direction(env, y, u_i, _basis(), 2.0, 3.0, 1 / 3.0, 1.0, prior_delta=pop)[0]
    assert free[2] > 0.3
