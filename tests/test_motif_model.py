"""The motif-grounded PRISM: components, sparsity, freeze switch, explanations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from epcli.explain import contribution_batches, top_contributions
from epcli.model.encoder import one_hot
from epcli.model.motif_read import ablated, prototype_tfs, top_motifs
from epcli.model.motif_sites import N_LEVEL_VIEWS, VIEWS
from epcli.model.registry import build_model
from epcli.motifs import load_motifs
from helpers import TEST_DATA, tiny_motif_model

TINY = load_motifs(TEST_DATA / "tiny_motifs.jaspar")


def motif_model(seed: int = 0, **kw):
    return tiny_motif_model(seed, n_free_filters=2, free_filter_len=7, interaction_rank=2, **kw)


def batch(seed: int = 0, n: int = 8, le: int = 300, lp: int = 200):
    rng = np.random.default_rng(seed)
    enh = rng.integers(0, 4, size=(n, le)).astype(np.uint8)
    pro = rng.integers(0, 4, size=(n, lp)).astype(np.uint8)
    # plant CTCF and FOS::JUN consensus sites in half of the enhancers
    for i in range(0, n, 2):
        for mid, j in ((TINY.ids.index("MA0139.2"), 40), (TINY.ids.index("MA0099.4"), 150)):
            site = TINY.motifs[mid].consensus()
            enh[i, j : j + len(site)] = ["ACGT".index(b) for b in site]
    ld = torch.as_tensor(rng.uniform(1.0, 3.0, n), dtype=torch.float32)
    return enh, pro, ld


def randomise(m, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (m.w_e, m.w_p, m.u, m.v, m.gate, m.dist):
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        m.gate.abs_()
        m.population_prototype.copy_(torch.randn(2, m.env_dim, generator=g))


def fit_norm(m, enh, pro):
    m.fit_normalization(m.scan_stats(enh), m.scan_stats(pro))


def outputs(m, enh, pro, ld, proto=None):
    m.eval()
    with torch.no_grad():
        return m(torch.as_tensor(enh), torch.as_tensor(pro), ld, proto)


def test_pwm_layer_is_initialised_from_the_motifs_and_planted_sites_raise_activity():
    m = motif_model()
    w, _, _ = TINY.log_odds_tensor()
    assert torch.allclose(m.scanner.weight, torch.as_tensor(w))
    enh, pro, _ = batch()
    fit_norm(m, enh, pro)
    z = m.encode_enhancers(enh).detach()
    ctcf = TINY.ids.index("MA0139.2") * VIEWS  # the motif's log-odds view
    assert z[0::2, ctcf].min() > z[1::2, ctcf].max()  # planted CTCF sites, and none elsewhere


@pytest.mark.parametrize(
    "flag, value", [("use_interaction", False), ("use_distance", False), ("use_re", False)]
)
def test_each_component_changes_outputs_when_switched_off(flag, value):
    enh, pro, ld = batch()
    on = motif_model()
    fit_norm(on, enh, pro)
    randomise(on)
    off = motif_model(**{flag: value})
    off.load_state_dict(on.state_dict())
    a, b = outputs(on, enh, pro, ld), outputs(off, enh, pro, ld)
    assert not torch.allclose(a["logit"], b["logit"])
    if flag == "use_re":
        assert torch.equal(b["r_e"], torch.zeros_like(b["r_e"]))
        assert torch.allclose(a["u_i"], b["u_i"])


def test_motif_prior_switch_and_sparsity():
    no_prior = motif_model(use_motif_prior=False)
    w, _, _ = TINY.log_odds_tensor()
    assert not torch.allclose(no_prior.scanner.weight, torch.as_tensor(w))
    assert no_prior.scanner.weight.requires_grad  # a random first layer must learn
    m = motif_model(sparsity=0.5)
    randomise(m)
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    enh, pro, ld = batch()
    fit_norm(m, enh, pro)
    m.train()
    out = m(torch.as_tensor(enh), torch.as_tensor(pro), ld)
    out["logit"].sum().backward()
    opt.step()
    m.proximal_step(opt)
    assert float(m.regularization().detach()) > 0
    # without support from the data the penalty alone sets weights to exactly 0 (at most lr
    # a step, so within 300 steps for weights of this size)
    before = int((m.w_e != 0).sum())
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    for _ in range(300):
        for q in m.parameters():
            q.grad = torch.zeros_like(q)
        opt.step()
        m.proximal_step(opt)
    assert before > 0 and int((m.w_e != 0).sum()) == 0
    with torch.no_grad():
        m.w_e.zero_(), m.w_p.zero_(), m.u.zero_(), m.v.zero_(), m.gate.zero_()
    assert m.active_motifs().numel() == 0


def test_proximal_step_moves_a_weight_at_most_lr():
    """A vanishing gradient (a warm start that already fits) must not zero every weight in
    one step: the L1 shrink is bounded by lr, as far as an Adam step moves a weight."""
    m = motif_model(sparsity=0.05)
    randomise(m)
    with torch.no_grad():
        m.w_e.fill_(0.5)
    opt = torch.optim.Adam([m.w_e, m.w_p, m.u, m.v, m.gate], lr=0.01)
    for p in (m.w_e, m.w_p, m.u, m.v, m.gate):
        p.grad = torch.full_like(p, 1e-9)  # Adam's second moment about 1e-18
    opt.step()
    before = m.w_e.detach().clone()
    m.proximal_step(opt)
    shrink = before.abs() - m.w_e.detach().abs()
    assert torch.all(shrink > 0) and torch.all(shrink <= 0.01 + 1e-6)
    assert int((m.w_e != 0).sum()) == m.w_e.numel()


@pytest.mark.parametrize("finetune", [False, True])
def test_freeze_switch_is_respected(finetune):
    m = motif_model(motif_finetune=finetune)
    randomise(m)
    enh, pro, ld = batch()
    fit_norm(m, enh, pro)
    w0 = m.scanner.weight.detach().clone()
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=0.05)
    m.train()
    for _ in range(3):
        opt.zero_grad()
        out = m(torch.as_tensor(enh), torch.as_tensor(pro), ld)
        y = torch.tensor([1.0, 0.0] * 4)
        torch.nn.functional.binary_cross_entropy_with_logits(out["logit"], y).backward()
        opt.step()
    changed = not torch.equal(w0, m.scanner.weight.detach())
    assert changed is finetune
    assert m.scanner.weight.requires_grad is finetune


def test_weights_saved_with_one_consensus_matrix_per_motif_still_load():
    from epcli.model.motif_sites import SiteLayout, site_matrices

    # such weights come from models that counted the whole consensus only
    enh, pro, ld = batch()
    m = motif_model(motif_sites="consensus")
    w, lengths, _ = TINY.log_odds_tensor()
    m.set_motifs(w, lengths, site_matrices(TINY, SiteLayout("consensus")))
    fit_norm(m, enh, pro)
    randomise(m)
    state = m.state_dict()
    assert state["scanner.cons"].shape[:2] == (1, len(TINY))
    # the layout of earlier versions: (M, 4, K) and (M,)
    old = {**state, "scanner.cons": state["scanner.cons"][0]}
    old["scanner.cons_len"] = state["scanner.cons_len"][0]
    back = motif_model(seed=1, motif_sites="consensus")
    back.load_state_dict(old, strict=True)
    assert torch.equal(back.scanner.cons, m.scanner.cons)
    assert torch.allclose(outputs(back, enh, pro, ld)["logit"], outputs(m, enh, pro, ld)["logit"])


def test_a_saved_config_without_site_models_loads_as_the_whole_consensus_only():
    from epcli.core.schema import saved_model_config
    from epcli.model.config import ModelConfig

    enh, pro, ld = batch()
    m = motif_model(motif_sites="consensus")
    fit_norm(m, enh, pro)
    randomise(m)
    saved = m.cfg.to_dict()
    del saved["motif_sites"]  # config.json of a model trained before the choice existed
    cfg = ModelConfig.from_dict(saved_model_config(saved))
    assert cfg.motif_sites == "consensus"
    back = build_model(cfg, seed=1)
    back.load_state_dict(m.state_dict(), strict=True)
    assert back.act_e.n_out == len(TINY) * 4 + 2  # log-odds + consensus at 0, 1, 2 mismatches
    assert torch.allclose(outputs(back, enh, pro, ld)["logit"], outputs(m, enh, pro, ld)["logit"])
    # a new model counts the cores too (8 views); the old weights do not fit it
    assert motif_model().act_e.n_out == len(TINY) * VIEWS + 2 and VIEWS == 8


@pytest.mark.parametrize(
    "sites, views", [("consensus+core", 7), ("levels+cores", 13), ("rates+cores", 12)]
)
def test_a_model_saved_with_another_site_set_loads_with_its_own_views(sites, views):
    from epcli.model.config import ModelConfig

    enh, pro, ld = batch()
    m = motif_model(motif_sites=sites)  # the earlier default; six log-odds views
    fit_norm(m, enh, pro)
    randomise(m)
    cfg = ModelConfig.from_dict(m.cfg.to_dict())
    assert cfg.motif_sites == sites
    back = build_model(cfg, seed=1)
    back.load_state_dict(m.state_dict(), strict=True)
    assert back.act_e.n_out == len(TINY) * views + 2
    assert torch.allclose(outputs(back, enh, pro, ld)["logit"], outputs(m, enh, pro, ld)["logit"])
    with pytest.raises(RuntimeError):  # its weights do not fit a model of the new default
        motif_model(seed=1).load_state_dict(m.state_dict(), strict=True)
    with pytest.raises(RuntimeError):
        motif_model().load_state_dict(m.state_dict(), strict=True)


def test_pruned_scan_gives_the_same_scores():
    enh, pro, ld = batch()
    m = motif_model()
    fit_norm(m, enh, pro)
    randomise(m)
    full = outputs(m, enh, pro, ld)
    with torch.no_grad():  # drop two motifs from every term: they need no scan
        for i in (0, 3):
            f = slice(i * VIEWS, (i + 1) * VIEWS)  # every view of the motif
            m.w_e[f] = m.w_p[f] = m.gate[f] = 0.0
            m.u[:, f] = m.v[:, f] = 0.0
    m.train(m.training)  # a mode switch forgets the cached set of active motifs
    assert m.active_motifs().tolist() == [1, 2, 4, 5]
    pruned = outputs(m, enh, pro, ld)
    m.prune_scan = False
    unpruned = outputs(m, enh, pro, ld)
    assert torch.allclose(pruned["logit"], unpruned["logit"], atol=1e-6)
    assert not torch.allclose(pruned["logit"], full["logit"])


def test_each_anchor_side_scans_only_the_views_its_terms_use():
    from epcli.model.motif_sites import site_matrices

    enh, pro, ld = batch()
    m = motif_model()
    m.set_motifs(*TINY.log_odds_tensor()[:2], site_matrices(TINY))
    fit_norm(m, enh, pro)
    randomise(m)
    nm = len(TINY) * VIEWS
    lv = N_LEVEL_VIEWS
    with torch.no_grad():  # enhancer side: log-odds views only; promoter: consensus only
        for i in range(len(TINY)):
            m.w_e[i * VIEWS + lv : (i + 1) * VIEWS] = 0.0
            m.u[:, i * VIEWS + lv : (i + 1) * VIEWS] = 0.0
            m.gate[i * VIEWS + lv : (i + 1) * VIEWS] = 0.0
            m.w_p[i * VIEWS : i * VIEWS + lv] = 0.0
            m.v[:, i * VIEWS : i * VIEWS + lv] = 0.0
        m.w_p[VIEWS : 2 * VIEWS] = 0.0  # motif 1 not at all on the promoter side
        m.v[:, VIEWS : 2 * VIEWS] = 0.0
    m.forget_plans()
    assert m.used_features("enhancer")[:nm].view(-1, VIEWS)[:, lv:].sum() == 0
    pruned = outputs(m, enh, pro, ld)
    m.scanner.clear_cache()
    m.prune_scan = False
    unpruned = outputs(m, enh, pro, ld)
    assert torch.allclose(pruned["logit"], unpruned["logit"], atol=1e-6)
    m.prune_scan = True
    m.eval()
    plan_e, plan_p = m.side_plan("enhancer"), m.side_plan("promoter")
    assert plan_e[:, 0].all() and not plan_e[:, 1:].any()
    n_sites = m.scanner.layout.n_scans - 1  # every consensus scan of 5 motifs
    assert not plan_p[:, 0].any() and plan_p[:, 1:].sum() == (len(TINY) - 1) * n_sites
    assert not plan_p[1].any()


def test_fixed_support_keeps_zero_weights_at_zero_through_training_steps():
    enh, pro, ld = batch()
    m = motif_model(sparsity=1e-4)
    fit_norm(m, enh, pro)
    randomise(m)
    with torch.no_grad():
        m.w_e[::2] = 0.0
        m.u[:, 1::3] = 0.0
    zero_e, zero_u = m.w_e == 0, m.u == 0
    m.fix_support()
    opt = torch.optim.Adam([m.w_e, m.w_p, m.u, m.v], lr=0.05)
    y = torch.tensor([1.0, 0.0] * 4)
    m.train()
    for _ in range(5):
        opt.zero_grad()
        logit = m(torch.as_tensor(enh), torch.as_tensor(pro), ld)["logit"]
        torch.nn.functional.binary_cross_entropy_with_logits(logit, y).backward()
        opt.step()
        m.proximal_step(opt)
    assert float(m.w_e.detach()[zero_e].abs().sum()) == 0.0
    assert float(m.u.detach()[zero_u].abs().sum()) == 0.0
    assert float(m.w_e.detach()[~zero_e].abs().sum()) > 0.0  # the support itself is refitted


def test_inference_combines_window_terms_and_ignores_chunking():
    from epcli.core.arrays import log_distance
    from epcli.inference.engine import WindowRows, pair_features_unique, score_features
    from test_predictor import make_pairs

    m = motif_model()
    data = make_pairs(n_enh=10, n_pro=6, n_pairs=80)
    fit_norm(m, data.enh_seqs, data.pro_seqs)
    randomise(m)
    with torch.no_grad():  # a sparse model: the inference path reads the used features only
        m.w_e[::3] = 0.0
        m.u[:, 1::2] = 0.0
    feats = pair_features_unique(m, data, batch_size=7)
    env = feats["env"]
    assert isinstance(env, WindowRows) and env.shape == (80, m.env_dim)
    assert env.values.shape[0] == np.unique(data.enh_idx).size  # one row per enhancer
    logit = score_features(m, feats, None)["logit"]
    ld = torch.as_tensor(log_distance(data.distance))
    ref = outputs(m, data.enh_seqs[data.enh_idx], data.pro_seqs[data.pro_idx], ld)
    np.testing.assert_allclose(logit, ref["logit"].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(env), ref["env"].numpy(), rtol=1e-6, atol=1e-6)
    # the same pairs among other windows and batch sizes: bit-identical values
    rows = np.arange(10, 50)
    part = pair_features_unique(m, data.subset(rows), batch_size=5)
    assert np.array_equal(part["u_i"], feats["u_i"][rows])
    assert np.array_equal(np.asarray(part["env"]), np.asarray(env[rows]))
    assert np.array_equal(score_features(m, part, None)["logit"], logit[rows])


def test_contributions_add_up_and_match_hand_computation():
    enh, pro, ld = batch()
    m = motif_model()
    fit_norm(m, enh, pro)
    with torch.no_grad():
        for p in (m.w_e, m.w_p, m.u, m.v, m.gate, m.dist):
            p.zero_()
        ctcf, ap1, sp1 = (TINY.ids.index(i) * VIEWS for i in ("MA0139.2", "MA0099.4", "MA0079.5"))
        m.w_e[ctcf] = 2.0
        m.w_p[sp1] = -1.0
        m.u[0, ap1] = 1.5  # one E x P pair: AP-1 (enhancer) x SP1 (promoter), weight 1.5 * 2
        m.v[0, sp1] = 2.0
        m.dist[0] = -0.5
        m.bias.fill_(0.25)
    m.eval()
    with torch.no_grad():
        te, tp = m.encode_enhancers(enh), m.encode_promoters(pro)
        c = m.contributions(te, tp, ld)
    total = (
        c["bias"]
        + c["enhancer"].sum(1)
        + c["promoter"].sum(1)
        + c["pair"].sum((1, 2))
        + c["distance"]
    )
    assert torch.allclose(total, c["u_i"], atol=1e-5)
    assert torch.allclose((c["u_i"] - c["r_e"]) / m.temperature(), c["logit"], atol=1e-5)
    from epcli.core.arrays import PairData

    data = PairData(
        enh_seqs=enh, pro_seqs=pro, enh_idx=np.arange(8), pro_idx=np.arange(8),
        distance=((10 ** ld.numpy() - 1) * 1000).round().astype(np.int64),
        cell_idx=np.zeros(8, np.int64), label=np.full(8, -1, np.int8),
        chrom=np.array(["c"] * 8, dtype=object), enh_mid=np.zeros(8, np.int64),
        pro_mid=np.zeros(8, np.int64), cells=["x"],
    )  # fmt: skip
    batched = list(contribution_batches(m, data, batch=3))  # each batch's windows encoded once
    assert [a for a, _ in batched] == [0, 3, 6]
    assert torch.allclose(torch.cat([b["u_i"] for _, b in batched]), c["u_i"], atol=1e-5)
    rows = [r for r in top_contributions(m, data, k=3) if r["pair"] == 0]
    z_e, z_p = te[0].numpy(), tp[0].numpy()
    ldist = float(torch.as_tensor(np.log10(1 + data.distance[0] / 1000)))
    expect = {
        ("enhancer", "MA0139.2", ""): 2.0 * z_e[ctcf],
        ("promoter", "MA0079.5", ""): -1.0 * z_p[sp1],
        ("pair", "MA0099.4", "MA0079.5"): 3.0 * z_e[ap1] * z_p[sp1],
        ("distance", "", ""): -0.5 * (ldist - 2.0),
    }
    top = sorted(expect.items(), key=lambda kv: -abs(kv[1]))[:3]
    assert [(r["part"], r["motif_id"], r["promoter_motif_id"]) for r in rows] == [k for k, _ in top]
    for r, (_, v) in zip(rows, top, strict=True):
        assert r["contribution"] == pytest.approx(v, rel=1e-4, abs=1e-5)
    assert rows[0]["motif_name"] in ("CTCF", "FOS::JUN", "SP1", "")


def test_ablation_restores_weights_and_top_motifs_are_ordered():
    m = motif_model()
    randomise(m)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with ablated(m, "interaction"):
        assert float(m.u.detach().abs().sum()) == 0.0
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k])
    tops = top_motifs(m, k=10)
    effects = [abs(t["effect"]) for t in tops]
    assert effects == sorted(effects, reverse=True) and len(tops) == 10
    assert {t["part"] for t in tops} <= {"enhancer", "promoter", "pair"}
    proto = np.zeros((2, m.env_dim))
    proto[1, 4 * VIEWS] = 2.0  # positives have more of motif 4 (FOS::JUN)
    proto[1, 0] = -1.0
    fav, dis = prototype_tfs(m, proto, reference=np.zeros_like(proto))
    assert fav[0]["name"] == "FOS::JUN" and dis[0]["name"] == "CREB1"


def test_a_second_site_set_reuses_the_first_sets_consensus_counts_exactly():
    """Training compares two site sets that count the same consensus models: the second
    scans only the log-odds matrices and copies the counts, which must equal its full scan."""
    from epcli.model.motif_sites import SiteLayout, site_matrices

    enh, _, _ = batch(n=12)
    w, lengths, _ = TINY.log_odds_tensor()
    models = []
    for sites in ("consensus+cores", "levels+cores", "levels+cores"):
        models.append(motif_model(motif_sites=sites))
        models[-1].set_motifs(w, lengths, site_matrices(TINY, SiteLayout(sites)))
    first, second, fresh = models
    stats = first.scan_stats(enh)
    shared = second.rescan_levels(enh, stats, first.scanner.layout)
    full = fresh.scan_stats(enh)
    assert shared.shape == full.shape and torch.equal(shared, full)
    # ... and it is memoised as a full scan: training reads it back without scanning again
    done = second.scanner.scans
    assert torch.equal(second.scan_stats(enh), full) and second.scanner.scans == done
    layout = second.scanner.layout
    counts = full[:, : len(TINY), len(layout.levels) : len(layout.levels) + layout.n_counts]
    assert counts.sum() > 0  # the planted sites are counted: the copy carries them
    # a set with other consensus models is scanned in full
    other = motif_model(motif_sites="consensus")
    other.set_motifs(w, lengths, site_matrices(TINY, SiteLayout("consensus")))
    assert torch.equal(other.rescan_levels(enh, stats, first.scanner.layout), other.scan_stats(enh))


def test_a_rates_model_counts_hits_at_its_matrices_own_levels():
    from epcli.model.motif_read import feature_names
    from epcli.model.motif_sites import RATES, rate_levels
    from epcli.motifs import DEFAULT_BACKGROUND

    enh, pro, ld = batch()
    m = motif_model(motif_sites="rates+cores")
    w = m.scanner.weight.detach().numpy()
    lengths = m.scanner.lengths.numpy()
    want = rate_levels(w, lengths, DEFAULT_BACKGROUND, RATES)
    assert np.allclose(m.scanner.level_rel.numpy(), want)
    assert not np.allclose(want, want[:1])  # each matrix its own levels
    # the log-odds stats count hits where the best relative score reaches each matrix's level
    stats = m.scanner.pwm_stats(one_hot(torch.as_tensor(enh, dtype=torch.long)))
    ref = motif_model(motif_sites="levels+cores")
    j = TINY.ids.index("MA0139.2")
    nl = len(RATES)
    with torch.no_grad():  # the same counts from a level-view scanner given CTCF's levels
        ref.scanner.level_rel[j, :nl] = torch.as_tensor(want[j])
        other = ref.scanner.pwm_stats(one_hot(torch.as_tensor(enh, dtype=torch.long)))
    assert torch.equal(stats[:, j, :nl], other[:, j, :nl])
    assert stats[:, j, :nl].sum() > 0
    ids, names = feature_names(m.cfg)
    assert ids[:2] == [f"{TINY.ids[0]}/r3e-03", f"{TINY.ids[0]}/r1e-03"]
    assert names[0] == f"{TINY.names[0]} [hits at 0.003/bp]"
    # saved and loaded, the levels come back with the weights
    back = build_model(m.cfg, seed=3)
    back.load_state_dict(m.state_dict(), strict=True)
    assert torch.equal(back.scanner.level_rel, m.scanner.level_rel)
    # without the motif prior the random matrices get their own levels (not all 1)
    rnd = motif_model(motif_sites="rates+cores", use_motif_prior=False)
    w = rnd.scanner.weight.detach().numpy()
    want = rate_levels(w, rnd.scanner.lengths.numpy(), DEFAULT_BACKGROUND, RATES)
    assert np.allclose(rnd.scanner.level_rel.numpy(), want) and (want < 1).any()
