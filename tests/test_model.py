"""Torch models, configuration and losses (tiny models, CPU, one thread)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from epcli.core.errors import EpcliError
from epcli.model import (
    CrossAttnModel,
    LossWeights,
    ModelConfig,
    PrismModel,
    bce_loss,
    build_model,
    episode_loss,
    hsic,
    ranking_loss,
    reverse_complement,
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def tiny_cfg(**kw) -> ModelConfig:
    base = dict(
        kind="prism-scratch",
        d_model=16,
        n_heads=2,
        pools=(4, 4),
        ms_kernels=(3, 7),
        stem_kernel=7,
        env_dim=4,
        dropout=0.0,
    )
    base.update(kw)
    return ModelConfig(**base)


def random_codes(rng: np.random.Generator, n: int, length: int) -> torch.Tensor:
    return torch.as_tensor(rng.integers(0, 4, size=(n, length)).astype(np.uint8))


def tiny_batch(seed: int = 0, n: int = 6, le: int = 201, lp: int = 149):
    rng = np.random.default_rng(seed)
    enh = random_codes(rng, n, le)
    pro = random_codes(rng, n, lp)
    ld = torch.as_tensor(rng.uniform(0.5, 2.5, size=n).astype(np.float32))
    return enh, pro, ld


# ---------------------------------------------------------------------------- config
def test_config_round_trip_and_defaults():
    cfg = ModelConfig()
    assert cfg.kind == "prism" and cfg.d_model == 64 and cfg.ms_kernels == (7, 15, 31)
    d = cfg.to_dict()
    assert d["ms_kernels"] == [7, 15, 31]  # JSON-able lists
    assert ModelConfig.from_dict(d) == cfg
    # default windows: 3,000 bp -> 375 -> 94 -> 47 tokens; 2,000 -> 250 -> 63 -> 32
    assert cfg.n_tokens(3000) == 47
    assert cfg.n_tokens(2000) == 32


def test_config_rejects_unknown_keys_naming_them():
    with pytest.raises(EpcliError) as exc:
        ModelConfig.from_dict({"d_model": 32, "dmodel": 3, "heads": 2})
    msg = str(exc.value)
    assert "'dmodel'" in msg and "'heads'" in msg
    assert "d_model" in exc.value.hint and "n_heads" in exc.value.hint


@pytest.mark.parametrize(
    "bad",
    [
        {"ms_kernels": [7, 14]},
        {"stem_kernel": 4},
        {"n_layers": 3},
        {"kind": "transformer"},
        {"use_re": "false"},
        {"t_min": 2.0, "t_max": 1.0},
        {"d_model": 64, "n_heads": 3},
        {"dropout": 1.0},
        {"re_bound": 0.0},
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(EpcliError):
        ModelConfig.from_dict(bad)


def test_build_model_kinds():
    assert isinstance(build_model(tiny_cfg(), seed=0), PrismModel)
    assert isinstance(build_model(tiny_cfg(kind="crossattn"), seed=0), CrossAttnModel)


# ---------------------------------------------------------------------------- encoder
def test_reverse_complement_numpy_and_torch():
    codes = np.array([[0, 1, 2, 3, 4, 0]], dtype=np.uint8)  # A C G T N A
    expected = np.array([[3, 4, 0, 1, 2, 3]], dtype=np.uint8)  # T N A C G T
    got = reverse_complement(codes)
    assert got.dtype == np.uint8 and np.array_equal(got, expected)
    t = reverse_complement(torch.as_tensor(codes))
    assert t.dtype == torch.uint8 and np.array_equal(t.numpy(), expected)
    assert np.array_equal(reverse_complement(reverse_complement(codes)), codes)


def test_token_shapes_for_odd_windows():
    model = build_model(tiny_cfg(), seed=0).eval()
    enh, pro, ld = tiny_batch(le=201, lp=149)
    with torch.no_grad():
        et = model.encode_enhancers(enh)
        pt = model.encode_promoters(pro.numpy())  # numpy accepted too
    # pools (4, 4) with ceil: 201 -> 51 -> 13; 149 -> 38 -> 10
    assert et.shape == (6, 13, 16)
    assert pt.shape == (6, 10, 16)
    with torch.no_grad():
        out = model(enh, pro, ld)
    assert out["logit"].shape == out["u_i"].shape == out["r_e"].shape == (6,)
    assert out["env"].shape == (6, 4)
    assert out["ui_feat"].shape == (6, 16)


def test_default_config_window_token_counts():
    model = build_model(ModelConfig(kind="prism-scratch"), seed=0).eval()
    rng = np.random.default_rng(1)
    with torch.no_grad():
        assert model.encode_enhancers(random_codes(rng, 1, 3000)).shape == (1, 47, 64)
        assert model.encode_promoters(random_codes(rng, 1, 2000)).shape == (1, 32, 64)


def test_all_n_window_is_finite_and_type_embedding_differs():
    model = build_model(tiny_cfg(), seed=0).eval()
    all_n = torch.full((2, 120), 4, dtype=torch.uint8)
    with torch.no_grad():
        et = model.encode_enhancers(all_n)
        pt = model.encode_promoters(all_n)
        out = model(all_n, all_n, torch.zeros(2))
    assert torch.isfinite(et).all() and torch.isfinite(out["logit"]).all()
    # same sequence, different anchor type -> different tokens
    assert not torch.allclose(et, pt)
    # codes above 4 are N as well
    with torch.no_grad():
        assert torch.equal(model.encode_enhancers(torch.full((2, 120), 9)), et)


# ---------------------------------------------------------------------------- components
def _clone_with(model: torch.nn.Module, **kw) -> torch.nn.Module:
    other = build_model(ModelConfig.from_dict({**model.cfg.to_dict(), **kw}), seed=123)
    other.load_state_dict(model.state_dict())
    return other.eval()


def test_use_distance_is_active():
    enh, pro, ld = tiny_batch()
    on = build_model(tiny_cfg(use_distance=True), seed=0).eval()
    off = build_model(tiny_cfg(use_distance=False), seed=0).eval()
    with torch.no_grad():
        a, b = on(enh, pro, ld)["u_i"], on(enh, pro, ld + 1.0)["u_i"]
        c, d = off(enh, pro, ld)["u_i"], off(enh, pro, ld + 1.0)["u_i"]
    assert (a - b).abs().min() > 1e-6  # distance moves U_I ...
    assert torch.equal(c, d)  # ... and is ignored when switched off


def test_use_re_is_active():
    enh, pro, ld = tiny_batch()
    on = build_model(tiny_cfg(use_re=True), seed=0).eval()
    off = _clone_with(on, use_re=False)
    proto = torch.tensor([[1.0, -1.0, 0.5, 0.0], [-1.0, 1.0, 0.0, 0.5]])
    with torch.no_grad():
        o_on, o_off = on(enh, pro, ld, proto), off(enh, pro, ld, proto)
    assert (o_on["r_e"].abs() > 1e-4).all()
    assert torch.equal(o_off["r_e"], torch.zeros(6))
    assert torch.equal(o_on["u_i"], o_off["u_i"])
    assert (o_on["logit"] - o_off["logit"]).abs().min() > 1e-5


def test_use_rope_is_active_and_makes_attention_position_aware():
    enh, pro, ld = tiny_batch()
    on = build_model(tiny_cfg(use_rope=True), seed=0).eval()
    off = _clone_with(on, use_rope=False)
    with torch.no_grad():
        et, pt = on.encode_enhancers(enh), on.encode_promoters(pro)
        perm = torch.arange(pt.shape[1]).roll(3)
        u_on = on.pair_features(et, pt, ld)["u_i"]
        u_on_perm = on.pair_features(et, pt[:, perm], ld)["u_i"]
        u_off = off.pair_features(et, pt, ld)["u_i"]
        u_off_perm = off.pair_features(et, pt[:, perm], ld)["u_i"]
    assert (u_on - u_off).abs().max() > 1e-5
    # Without RoPE, attention + mean/max pooling cannot see the order of promoter tokens;
    # with RoPE it can.
    assert (u_off - u_off_perm).abs().max() <= 1e-5
    assert (u_on - u_on_perm).abs().max() > 1e-4


def test_env_detach_stops_r_e_gradient_into_encoder():
    enh, pro, ld = tiny_batch()
    proto = torch.tensor([[1.0, -1.0, 0.5, 0.0], [-1.0, 1.0, 0.0, 0.5]])
    grads = {}
    for detach in (False, True):
        m = build_model(tiny_cfg(env_detach=detach), seed=0)
        m(enh, pro, ld, proto)["r_e"].sum().backward()
        grads[detach] = m.encoder.stem.weight.grad
        assert m.env_head[0].weight.grad.abs().sum() > 0  # the head still learns
    assert grads[False].abs().sum() > 0
    assert grads[True] is None or grads[True].abs().sum() == 0


# ---------------------------------------------------------------------------- prototypes, R_E, T
def test_make_prototype_class_means_and_fallback():
    model = build_model(tiny_cfg(env_dim=2), seed=0)
    env = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0], [5.0, 5.0]])
    labels = torch.tensor([0, 0, 1, -1])  # -1 is ignored
    proto = model.make_prototype(env, labels)
    assert torch.equal(proto, torch.tensor([[2.0, 3.0], [10.0, 0.0]]))
    model.set_population_prototype(torch.tensor([[7.0, 7.0], [8.0, 8.0]]))
    only_neg = model.make_prototype(env[:2], labels[:2])
    assert torch.equal(only_neg, torch.tensor([[2.0, 3.0], [8.0, 8.0]]))


def test_support_set_changes_r_e_but_not_u_i():
    enh, pro, ld = tiny_batch(n=8)
    model = build_model(tiny_cfg(), seed=0).eval()
    with torch.no_grad():
        feats = model.pair_features(model.encode_enhancers(enh), model.encode_promoters(pro), ld)
        env = feats["env"]
        p1 = model.make_prototype(env, torch.tensor([1, 1, 1, 1, 0, 0, 0, 0]))
        p2 = model.make_prototype(env, torch.tensor([0, 1, 0, 1, 0, 1, 0, 1]))
        o1 = model(enh, pro, ld, p1)
        o2 = model(enh, pro, ld, p2)
    assert not torch.allclose(p1, p2)
    assert torch.equal(o1["u_i"], o2["u_i"])  # bit-identical U_I in two "cells"
    assert (o1["r_e"] - o2["r_e"]).abs().max() > 1e-5


def test_u_i_identical_under_two_prototypes_and_population_default():
    enh, pro, ld = tiny_batch()
    model = build_model(tiny_cfg(), seed=0).eval()
    g = torch.Generator().manual_seed(5)
    pa, pb = torch.randn(2, 4, generator=g), torch.randn(2, 4, generator=g)
    with torch.no_grad():
        oa, ob = model(enh, pro, ld, pa), model(enh, pro, ld, pb)
        model.set_population_prototype(pa)
        odef = model(enh, pro, ld)
    assert torch.equal(oa["u_i"], ob["u_i"])
    assert not torch.allclose(oa["logit"], ob["logit"])
    assert torch.equal(odef["logit"], oa["logit"])
    # logit = (u_i - r_e) / T
    want = (oa["u_i"] - oa["r_e"]) / model.temperature()
    assert (oa["logit"] - want).abs().max() <= 1e-6


def test_r_e_matches_prototype_distances_and_is_bounded():
    model = build_model(tiny_cfg(env_dim=3, re_bound=2.5), seed=0)
    env = torch.tensor([[0.1, 0.2, -0.3], [-0.2, 0.2, 0.1], [0.0, 0.0, 0.0]], dtype=torch.float64)
    proto = torch.tensor([[0.5, 0.5, 0.5], [-0.2, 0.1, 0.0]], dtype=torch.float64)
    got = model.r_e(env.float(), proto.float()).double()
    # independent path: squared Euclidean distances to each prototype, scale s = 1 at init
    d_neg = ((env - proto[0]) ** 2).sum(1)
    d_pos = ((env - proto[1]) ** 2).sum(1)
    want = 2.5 * torch.tanh(1.0 * (d_pos - d_neg) / 3)
    assert (got - want).abs().max() <= 1e-6
    # nearer the positive prototype -> negative resistance (logit goes up)
    assert got[1] < 0
    extreme = torch.tensor(
        [[1e30, -1e30, 1e30], [-1e30, 1e30, 1e30], [3e38, 3e38, -3e38], [1e6, 1e6, 1e6]]
    )
    r = model.r_e(extreme, proto.float())
    assert torch.isfinite(r).all() and (r.abs() <= 2.5).all()
    assert r.abs().max() > 2.4  # saturates towards the bound


def test_r_e_per_pair_prototypes():
    model = build_model(tiny_cfg(env_dim=2), seed=0)
    env = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pa = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    pb = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    per_pair = model.r_e(env, torch.stack([pa, pb]))
    assert per_pair[0] == model.r_e(env, pa)[0] and per_pair[1] == model.r_e(env, pb)[1]


def test_temperature_bounded():
    model = build_model(tiny_cfg(t_min=0.25, t_max=4.0), seed=0)
    assert math.isclose(model.temperature().item(), 1.0, rel_tol=1e-6)
    with torch.no_grad():
        model.temp_raw.fill_(1e9)
        assert math.isclose(float(model.temperature()), 4.0, rel_tol=1e-6)
        model.temp_raw.fill_(-1e9)
        assert math.isclose(float(model.temperature()), 0.25, rel_tol=1e-6)
        for v in (-30.0, -2.0, 0.0, 3.0, 50.0):
            model.temp_raw.fill_(v)
            assert 0.25 <= float(model.temperature()) <= 4.0


# ---------------------------------------------------------------------------- seeds
def test_same_seed_same_weights_and_outputs_global_rng_untouched():
    enh, pro, ld = tiny_batch()
    state = torch.random.get_rng_state()
    a = build_model(tiny_cfg(), seed=7).eval()
    b = build_model(tiny_cfg(), seed=7).eval()
    c = build_model(tiny_cfg(), seed=8).eval()
    assert torch.equal(torch.random.get_rng_state(), state)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    with torch.no_grad():
        assert torch.equal(a(enh, pro, ld)["logit"], b(enh, pro, ld)["logit"])
        assert not torch.equal(a(enh, pro, ld)["logit"], c(enh, pro, ld)["logit"])


# ---------------------------------------------------------------------------- crossattn
def test_crossattn_interface():
    enh, pro, ld = tiny_batch()
    m = build_model(tiny_cfg(kind="crossattn"), seed=0).eval()
    with torch.no_grad():
        feats = m.pair_features(m.encode_enhancers(enh), m.encode_promoters(pro), ld)
        out = m(enh, pro, ld, proto=torch.ones(2, 4))
    assert feats["env"] is None and feats["u_i"].shape == (6,)
    assert torch.equal(out["logit"], out["u_i"]) and torch.equal(out["logit"], feats["u_i"])
    assert torch.equal(out["r_e"], torch.zeros(6))
    assert m.make_prototype(None, torch.tensor([0, 1])) is None
    assert torch.equal(m.r_e(None, None), torch.tensor(0.0))
    assert float(m.temperature()) == 1.0
    assert m.population_prototype is None


# ---------------------------------------------------------------------------- losses
def test_ranking_loss_hand_computed():
    logit = torch.tensor([2.0, 0.5, -1.0])
    y = torch.tensor([1, 0, 1])
    # positive-negative pairs: (2.0, 0.5) and (-1.0, 0.5)
    want = (math.log1p(math.exp(-1.5)) + math.log1p(math.exp(1.5))) / 2
    assert math.isclose(float(ranking_loss(logit, y)), want, rel_tol=1e-6)
    assert float(ranking_loss(logit, torch.tensor([1, 1, 1]))) == 0.0
    assert float(ranking_loss(logit, torch.tensor([0, 0, 0]))) == 0.0


def test_bce_hand_computed():
    logit = torch.tensor([0.0, 2.0])
    y = torch.tensor([1, 0])
    want = (math.log(2.0) + math.log1p(math.exp(2.0))) / 2
    assert math.isclose(float(bce_loss(logit, y)), want, rel_tol=1e-6)


def _hsic_numpy(x: np.ndarray, c: np.ndarray) -> float:
    n = x.shape[0]
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    off = d2[~np.eye(n, dtype=bool)]
    off = np.sort(off[off > 0])
    bw = off[(off.size - 1) // 2]  # lower median
    k = np.exp(-d2 / bw)
    lmat = c @ c.T
    h = np.eye(n) - 1.0 / n
    return float(np.trace(k @ h @ lmat @ h) / (n - 1) ** 2)


def test_hsic_independent_vs_dependent():
    rng = np.random.default_rng(0)
    n = 120
    cells = rng.integers(0, 3, n)
    onehot = np.eye(3)[cells]
    x_ind = rng.normal(size=(n, 5))
    x_dep = x_ind + 3.0 * onehot @ rng.normal(size=(3, 5))
    h_ind = float(hsic(torch.tensor(x_ind), torch.tensor(onehot)))
    h_dep = float(hsic(torch.tensor(x_dep), torch.tensor(onehot)))
    assert math.isclose(h_ind, _hsic_numpy(x_ind, onehot), rel_tol=1e-6)
    assert math.isclose(h_dep, _hsic_numpy(x_dep, onehot), rel_tol=1e-6)
    assert h_ind < 0.01
    assert h_dep > 10 * h_ind and h_dep > 0.05
    one_cell = torch.zeros(n, 3, dtype=torch.float64)
    one_cell[:, 1] = 1.0
    assert float(hsic(torch.tensor(x_dep), one_cell)) == 0.0


def test_episode_loss_weighted_sum():
    g = torch.Generator().manual_seed(0)
    out = {
        "logit": torch.randn(8, generator=g),
        "u_i": torch.randn(8, generator=g),
        "ui_feat": torch.randn(8, 3, generator=g),
    }
    y = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
    cells = torch.eye(2)[torch.tensor([0, 0, 1, 1, 0, 1, 0, 1])]
    w = LossWeights(bce=1.0, rank=0.3, aux_ui=0.2, hsic=2.0)
    total, parts = episode_loss(out, y, cells, w)
    assert set(parts) == {"bce", "rank", "aux_ui", "hsic", "total"}
    want = (
        float(bce_loss(out["logit"], y))
        + 0.3 * float(ranking_loss(out["logit"], y))
        + 0.2 * float(bce_loss(out["u_i"], y))
        + 2.0 * float(hsic(out["ui_feat"], cells))
    )
    assert math.isclose(float(total), want, rel_tol=1e-6)
    assert math.isclose(parts["total"], want, rel_tol=1e-6)
    _, parts0 = episode_loss(out, y, None, w)
    assert parts0["hsic"] == 0.0


# ---------------------------------------------------------------------------- learning
def _aupr(score: np.ndarray, y: np.ndarray) -> float:
    """Average precision computed by hand (no ties expected)."""
    order = np.argsort(-score)
    ys = y[order]
    tp = np.cumsum(ys)
    precision = tp / np.arange(1, len(ys) + 1)
    return float((precision * ys).sum() / ys.sum())


@pytest.mark.parametrize("kind", ["prism-scratch", "crossattn"])
def test_tiny_model_learns_planted_motif(kind):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 48
    enh = rng.integers(0, 4, size=(n, 200)).astype(np.uint8)
    pro = rng.integers(0, 4, size=(n, 150)).astype(np.uint8)
    y = np.zeros(n, dtype=np.int64)
    y[rng.permutation(n)[: n // 2]] = 1
    motif = np.array([3, 2, 0, 1, 3, 1, 0, 2], dtype=np.uint8)  # TGACTCAG
    for i in np.flatnonzero(y):
        pos = rng.integers(0, 200 - len(motif))
        enh[i, pos : pos + len(motif)] = motif
    ld = torch.as_tensor(rng.uniform(0.5, 2.5, n).astype(np.float32))  # uninformative
    enh_t, pro_t, y_t = torch.as_tensor(enh), torch.as_tensor(pro), torch.as_tensor(y)
    model = build_model(tiny_cfg(kind=kind), seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    w = LossWeights()
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss, _ = episode_loss(model(enh_t, pro_t, ld), y_t, None, w)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        score = model(enh_t, pro_t, ld)["logit"].numpy()
    assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5])
    assert _aupr(score, y) >= 0.95


def test_config_value_of_wrong_type_is_named():
    from epcli.core.errors import EpcliError

    with pytest.raises(EpcliError, match=r"model config d_model='64' has the wrong type"):
        ModelConfig(d_model="64")
    with pytest.raises(EpcliError, match="model config ms_kernels"):
        ModelConfig(ms_kernels=(7, "15"))
