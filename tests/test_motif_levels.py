"""Each matrix's own log-odds levels, and their refinement on held-out pairs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from epcli.model.motif_levels import (
    UNIFORM,
    best_scale,
    rebase,
    refine_levels,
    swappable,
    used_level_views,
)
from epcli.model.motif_read import model_feature_names
from epcli.model.motif_sites import site_matrices
from epcli.model.registry import build_model
from epcli.motifs import DEFAULT_BACKGROUND, load_motifs
from helpers import (
    TEST_DATA,
    pair_u_i,
    product_pairs,
    random_windows,
    reads_only,
    tiny_motif_model,
)

SITES = "levels+cores"


def level_model(seed: int = 0):
    return tiny_motif_model(
        seed, n_free_filters=0, interaction_rank=2, motif_sites=SITES, motif_bins=2
    )


def pair_set(m, true_level: float, seed: int, background=None):
    """Windows, their statistics (the model standardised over them) and pairs labelled by
    the product of one matrix's standardised hit counts at ``true_level`` on both sides
    (its log-odds against ``background`` when given): ``logit = 2.5 x_E x_P - 1``."""
    motif = 1
    enh, pro = random_windows(300, 400, seed), random_windows(120, 400, seed + 1)
    truth = m
    if background is not None:
        truth = copy.deepcopy(m)
        rebase(truth.scanner, motif, background)
    counts = [
        truth.scanner.level_hits(
            torch.as_tensor(w.astype(np.int64)), motif, torch.tensor([true_level])
        )[:, 0]
        .sum(-1)
        .numpy()
        for w in (enh, pro)
    ]
    (se, sp), (ei, pi), y, held = product_pairs(m, enh, pro, counts, seed)
    return motif, (enh, pro), (se, sp), (ei, pi), y, held


def refine(m, codes, stats, pairs, y, held, log=None):
    ei, pi = pairs
    u_i = pair_u_i(m, ei[held], pi[held])
    return refine_levels(
        m, codes, stats, (ei[~held], pi[~held]), u_i, y[torch.as_tensor(held)], log
    )


def test_refinement_moves_a_level_to_the_one_that_explains_the_labels():
    m = level_model()
    lay = m.scanner.layout
    view = lay.levels.index(0.8)
    motif, codes, (se, sp), pairs, y, held = pair_set(m, 0.83, 2)
    col = motif * lay.views + view
    reads_only(m, col)  # the pair's views at the shared level 0.80, with the true weight
    assert used_level_views(m) == [(motif, view)]
    logged = []
    changed = refine(m, codes, (se, sp), pairs, y, held, logged.append)
    assert [(c["motif"], c["view"]) for c in changed] == [(motif, view)]
    assert abs(changed[0]["level_to"] - 0.83) < 0.015
    assert changed[0]["deviance_to"] < changed[0]["deviance_from"]
    assert abs(float(m.scanner.level_rel[motif, view]) - changed[0]["level_to"]) < 1e-6
    # the memo serves the refined statistics without a rescan; a fresh scan gives the same
    done = m.scanner.scans
    for side, st in zip(codes, (se, sp), strict=True):
        assert torch.equal(m.scan_stats(side), st)
    assert m.scanner.scans == done
    m.scanner.clear_cache()
    for side, st in zip(codes, (se, sp), strict=True):
        assert torch.equal(m.scan_stats(side)[:, motif, view], st[:, motif, view])
    with torch.no_grad():
        assert (
            abs(float(m.act_e(se)[torch.as_tensor(np.unique(pairs[0][~held])), col].mean())) < 1e-4
        )
    assert "1 of 1 level views of E x P pairs and the largest motif terms moved" in logged[0]


def test_a_pair_reading_a_consensus_view_moves_to_a_refined_level_view():
    m = level_model()
    lay = m.scanner.layout
    ms = load_motifs(TEST_DATA / "tiny_motifs.jaspar")
    w, lengths, _ = ms.log_odds_tensor()
    m.set_motifs(w, lengths, site_matrices(ms, lay))  # with the consensus views
    motif, codes, (se, sp), pairs, y, held = pair_set(m, 0.83, 2)
    core = motif * lay.views + lay.views - 1  # its 5 bp core: about one hit per window
    reads_only(m, core)
    assert used_level_views(m) == []  # no level view to refine: only the swap can help
    logged = []
    changed = refine(m, codes, (se, sp), pairs, y, held, logged.append)
    col = int(m.u[0].nonzero().flatten()[0])
    assert col // lay.views == motif and col % lay.views < lay.n_level_views
    assert int(m.v[0].nonzero().flatten()[0]) == col  # both sides, one level view
    weight = float(m.u.detach()[0, col] * m.v.detach()[0, col])
    assert abs(weight - 2.5) < 0.5  # each swap's weight refitted: the rule's 2.5
    level = float(m.scanner.level_rel[motif, col % lay.views])
    assert abs(level - 0.83) < 0.015
    (entry,) = changed
    assert (entry["motif"], entry["view"], entry["in_place_of"]) == (motif, col % lay.views, core)
    assert entry["deviance_to"] < entry["deviance_from"]
    assert f"in place of NFYA/{core % lay.views}" in logged[0]


def test_best_scale_does_not_overshoot_where_the_logits_saturate():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, generator=g)
    y = (torch.rand(4000, generator=g) < torch.sigmoid(x)).float()
    rest = torch.zeros(4000)
    for true, term in ((0.05, 20 * x), (2.0, 0.5 * x), (0.0, torch.randn(4000, generator=g))):
        s = best_scale(rest, term, y)
        grid = torch.linspace(0, 10, 20001)
        devs = torch.stack([F.binary_cross_entropy_with_logits(rest + c * term, y) for c in grid])
        assert 0.0 <= float(s) <= 10.0
        assert abs(float(s) - float(grid[devs.argmin()])) < 0.01  # the grid's optimum
        assert abs(float(s) - true) < 0.5 * true + 0.05


def test_a_wrong_side_of_a_pair_moves_to_the_matrix_its_partner_reads():
    m = level_model()
    lay = m.scanner.layout
    ms = load_motifs(TEST_DATA / "tiny_motifs.jaspar")
    w, lengths, _ = ms.log_odds_tensor()
    m.set_motifs(w, lengths, site_matrices(ms, lay))
    motif, codes, (se, sp), pairs, y, held = pair_set(m, 0.83, 13)
    other = 4 * lay.views + lay.views - 1  # FOS::JUN's core: not the labels' matrix
    right = motif * lay.views + lay.levels.index(0.8)
    reads_only(m, other)
    with torch.no_grad():  # the promoter side reads the labels' matrix, at 0.80
        m.v[0, other], m.v[0, right] = 0.0, 1.0
    changed = refine(m, codes, (se, sp), pairs, y, held)
    col = int(m.u[0].nonzero().flatten()[0])
    assert col // lay.views == motif and col % lay.views < lay.n_level_views
    (swapped,) = [c for c in changed if "in_place_of" in c]
    assert swapped["in_place_of"] == other
    # the candidates' weights were fitted on the block: far better than no pair at all
    assert swapped["deviance_to"] < swapped["deviance_from"] - 0.1


def test_the_consensus_and_core_views_tried_are_the_pairs_and_the_largest_additive_ones():
    m = level_model()
    views, nl = m.scanner.layout.views, m.scanner.layout.n_level_views
    reads_only(m, 1 * views + nl)  # a pair on a consensus view, both sides
    with torch.no_grad():
        m.u[1, 2 * views + 1] = 0.5  # a pair on a level view: refined, not swapped
        m.v[1, 3 * views + nl + 2] = 0.5  # ... whose promoter side is a consensus view
        m.w_e[4 * views + nl + 1] = -0.9  # additive consensus and core views, by |weight|
        m.w_p[5 * views + nl + 3] = 0.4
        m.w_e[0 * views + nl] = 0.1
        m.w_e[2 * views + 3] = 5.0  # a level view
    tried = [(w is m.u, w is m.v, w is m.w_e, row, f) for w, row, f in swappable(m, 2)]
    assert tried == [
        (True, False, False, (0,), 1 * views + nl),
        (False, True, False, (0,), 1 * views + nl),
        (False, True, False, (1,), 3 * views + nl + 2),
        (False, False, True, (), 4 * views + nl + 1),
        (False, False, False, (), 5 * views + nl + 3),
    ]
    assert len(swappable(m, 10)) == 6 and len(swappable(m, 0)) == 3


@pytest.mark.parametrize("seed", [5, 7])
def test_the_level_search_walks_past_its_window_to_a_level_farther_away(seed):
    m = level_model()
    lay = m.scanner.layout
    view = lay.levels.index(0.7)  # the lowest shared level; the labels follow hits at 0.57
    motif, codes, (se, sp), pairs, y, held = pair_set(m, 0.57, seed)
    reads_only(m, motif * lay.views + view)
    changed = refine(m, codes, (se, sp), pairs, y, held)
    assert [(c["motif"], c["view"]) for c in changed] == [(motif, view)]
    # a window of OFFSETS reaches 0.66, and the background search's one 0.62 at most;
    # the search goes on from the farthest level while it wins
    assert abs(changed[0]["level_to"] - 0.57) < 0.015
    assert changed[0]["deviance_to"] < 0.7 * changed[0]["deviance_from"]


def test_refinement_leaves_a_level_that_is_already_right():
    m = level_model()
    lay = m.scanner.layout
    view = lay.levels.index(0.8)
    motif, codes, (se, sp), pairs, y, held = pair_set(m, 0.8, 5)
    reads_only(m, motif * lay.views + view)
    before = se.clone(), sp.clone()
    assert refine(m, codes, (se, sp), pairs, y, held) == []
    assert torch.equal(se, before[0]) and torch.equal(sp, before[1])
    assert float(m.scanner.level_rel[motif, view]) == np.float32(0.8)


def test_the_largest_additive_level_views_are_refined_beside_the_pairs():
    m = level_model()
    views, nl = m.scanner.layout.views, m.scanner.layout.n_level_views
    reads_only(m, 1 * views + 2)
    with torch.no_grad():
        m.w_e[3 * views + 1] = 0.9  # level views, by |weight|
        m.w_p[0 * views + 4] = -0.5
        m.w_e[4 * views + 0] = 0.2
        m.w_e[5 * views + nl] = 2.0  # a consensus view: never a level to refine
        m.w_e[1 * views + 2] = 3.0  # already read by the pair
    assert used_level_views(m) == [(1, 2)]
    assert used_level_views(m, 2) == [(0, 4), (1, 2), (3, 1)]
    assert used_level_views(m, 10) == [(0, 4), (1, 2), (3, 1), (4, 0)]


def test_a_blended_site_set_has_no_own_levels_to_refine():
    m = tiny_motif_model(0, n_free_filters=0, interaction_rank=2)
    assert not hasattr(m.scanner, "level_rel")
    assert refine_levels(m, (None, None), (None, None), (None, None), None, None) == []


def test_refinement_never_puts_two_views_of_a_matrix_on_one_level():
    m = level_model()
    lay = m.scanner.layout
    view = lay.levels.index(0.8)
    motif, codes, (se, sp), pairs, y, held = pair_set(m, 0.83, 2)
    with torch.no_grad():  # the matrix's next view already counts at the true level
        m.scanner.level_rel[motif, view + 1] = 0.83
    reads_only(m, motif * lay.views + view)
    changed = refine(m, codes, (se, sp), pairs, y, held)
    assert len(changed) == 1
    assert abs(changed[0]["level_to"] - 0.83) > 0.005
    assert abs(changed[0]["level_to"] - 0.83) < 0.015


def test_rebase_takes_a_matrix_against_another_background_and_back():
    m = level_model()
    ms = load_motifs(TEST_DATA / "tiny_motifs.jaspar")
    k = ms.motifs[1].length
    before = m.scanner.weight[1].clone()
    rebase(m.scanner, 1, UNIFORM)
    p = ms.motifs[1].probabilities(DEFAULT_BACKGROUND)  # (4, k), the same probabilities
    want = np.log2(p / 0.25)
    assert np.allclose(m.scanner.weight[1, :, :k].numpy(), want, atol=1e-5)
    assert torch.equal(m.scanner.weight[1, :, k:], before[:, k:])  # padding stays 0
    assert torch.equal(m.scanner.weight[0], level_model().scanner.weight[0])
    assert np.allclose(m.scanner.background[1].numpy(), UNIFORM)
    ids, names = model_feature_names(m)
    views = m.scanner.layout.views
    assert ids[views].endswith("/s70u") and "uniform background" in names[views]
    assert ids[0].endswith("/s70") and "background" not in names[0]
    back = build_model(m.cfg, seed=3)
    back.load_state_dict(m.state_dict(), strict=True)  # saved and read with the weights
    assert torch.equal(back.scanner.background, m.scanner.background)
    legacy = build_model(m.cfg, seed=3)  # weights saved before matrices had backgrounds
    legacy.load_state_dict(
        {k: v for k, v in m.state_dict().items() if k != "scanner.background"}, strict=True
    )
    assert np.allclose(legacy.scanner.background.numpy(), DEFAULT_BACKGROUND)
    rebase(m.scanner, 1, DEFAULT_BACKGROUND)
    assert torch.allclose(m.scanner.weight[1], before, atol=1e-5)


def test_refinement_moves_a_matrix_to_the_background_that_explains_the_labels():
    m = level_model()
    lay = m.scanner.layout
    view = lay.levels.index(0.8)
    motif, codes, (se, sp), pairs, y, held = pair_set(m, 0.8, 7, background=UNIFORM)
    col = motif * lay.views + view
    reads_only(m, col)
    logged = []
    changed = refine(m, codes, (se, sp), pairs, y, held, logged.append)
    assert len(changed) == 1
    r = changed[0]
    assert (r["background_from"], r["background_to"]) == ("genome", "uniform")
    assert abs(r["level_to"] - 0.8) < 0.015
    assert r["deviance_to"] < r["deviance_from"] - 0.01
    assert np.allclose(m.scanner.background[motif].numpy(), UNIFORM)
    assert "uniform background" in logged[0]
    # the memo serves the refined statistics; a fresh scan of the rebased matrix agrees
    for side, st in zip(codes, (se, sp), strict=True):
        assert torch.equal(m.scan_stats(side), st)
    m.scanner.clear_cache()
    for side, st in zip(codes, (se, sp), strict=True):
        fresh = m.scan_stats(side)[:, motif]
        assert torch.equal(fresh[:, : len(lay.levels)], st[:, motif, : len(lay.levels)])
        assert torch.allclose(fresh[:, -1], st[:, motif, -1])
