"""Consensus strings edited on held-out pairs (:mod:`epcli.model.motif_consensus`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from epcli.model.motif_consensus import edits, refine_consensus, refine_views
from epcli.model.motif_kernels import scan_input
from epcli.model.motif_read import model_feature_names
from epcli.model.motif_sites import site_matrices
from epcli.model.registry import build_model
from epcli.motifs import load_motifs
from epcli.motifs.pwm import iupac_string
from helpers import (
    TEST_DATA,
    pair_u_i,
    product_pairs,
    random_windows,
    reads_only,
    tiny_motif_model,
)

CREB1 = 0  # TGATGTCA in tests/data/tiny_motifs.jaspar


def allowed(text: str) -> np.ndarray:
    """IUPAC letters -> allowed bases (4, k), bool."""
    codes = {"A": "A", "C": "C", "G": "G", "T": "T", "N": "ACGT", "R": "AG", "K": "GT"}
    return np.array([[b in codes[c] for c in text] for b in "ACGT"])


def consensus_model(seed: int = 0):
    """The tiny motif model with its consensus views (``consensus+cores``)."""
    m = tiny_motif_model(seed, n_free_filters=0, interaction_rank=2, motif_bins=2)
    ms = load_motifs(TEST_DATA / "tiny_motifs.jaspar")
    w, lengths, _ = ms.log_odds_tensor()
    m.set_motifs(w, lengths, site_matrices(ms, m.scanner.layout))
    return m


def test_consensus_hits_count_as_the_scan_counts():
    m = consensus_model()
    sc, lay = m.scanner, m.scanner.layout
    codes = random_windows(5, 700, 3)
    stats = m.scan_stats(codes)
    x = scan_input(torch.as_tensor(codes.astype(np.int64)))
    col = len(lay.levels)
    for s, (_, _, allow) in enumerate(lay.models):
        for motif in range(sc.n_motifs):
            k = int(sc.cons_len[s, motif])
            if k == 0:
                continue
            got = sc.consensus_hits(x, sc.cons[s, motif, :, :k][None], allow)[:, 0]
            assert torch.equal(got, stats[:, motif, col : col + len(allow)])
        col += len(allow)
    assert stats[:, :, len(lay.levels) : -1].sum() > 0


def test_edits_of_a_string_are_each_single_change_listed_by_hand():
    ref = allowed("CACTTCCTGT")
    got = {(iupac_string(s), a) for s, a in edits(allowed("ACTTCCTG"), ref, 1, 16)}
    want = {("CTTCCTG", 2), ("ACTTCCT", 1), ("CACTTCCTG", 0), ("ACTTCCTGT", 1)}
    want |= {("ACTTCCTG"[:i] + "N" + "ACTTCCTG"[i + 1 :], 1) for i in range(1, 7)}
    assert got == want
    # a two-base code is narrowed to each of its bases; a string keeps 5 specific positions
    got = {iupac_string(s) for s, _ in edits(allowed("AGRKGG"), None, None, 16)}
    want = {"GRKGG", "AGRKG", "ANRKGG", "AGNKGG", "AGRNGG", "AGRKNG"}
    assert got == want | {"AGAKGG", "AGGKGG", "AGRGGG", "AGRTGG"}
    assert edits(allowed("AGNKG"), None, None, 16) == []  # 4 specific left at most
    assert all(s.shape[1] <= 9 for s, _ in edits(allowed("ACTTCCTG"), ref, 1, 9))


def creb_pairs(m, truth: str, seed: int):
    """Windows, their statistics (the model standardised over them) and pairs labelled by
    the product of the standardised exact-match counts of ``truth`` on both sides:
    ``logit = 2.5 x_E x_P - 1``; half the pairs held out."""
    enh, pro = random_windows(300, 2000, seed), random_windows(120, 2000, seed + 1)
    counts = []
    for w in (enh, pro):
        hits = m.scanner.consensus_hits(
            scan_input(torch.as_tensor(w.astype(np.int64))),
            torch.as_tensor(allowed(truth)[None], dtype=torch.float32),
            (0,),
        )
        counts.append(hits[:, 0, 0].sum(-1).numpy())
    (se, sp), (ei, pi), y, held = product_pairs(m, enh, pro, counts, seed)
    part = torch.as_tensor(ei[held] % 2 == 0)
    search = (
        (enh, pro),
        (se, sp),
        (ei[~held], pi[~held]),
        pair_u_i(m, ei[held], pi[held]),
        y[torch.as_tensor(held)],
    )
    return search, part


def test_a_pair_reading_a_matrix_consensus_takes_the_edit_that_its_sites_follow():
    m = consensus_model()
    lay = m.scanner.layout
    nl = lay.n_level_views
    col = CREB1 * lay.views + nl + 1  # TGATGTCA with at most 1 mismatch
    reads_only(m, col)
    search, part = creb_pairs(m, "TGANGTCA", 4)  # the sites: position 4 open, exact
    logged = []
    entry, other = refine_consensus(m, *search, logged.append, part=part)
    # the promoter side's weight row reads the edited string, and moves to its exact view
    assert [other[k] for k in ("consensus_from", "consensus_to")] == ["TGANGTCA"] * 2
    assert (other["mismatches_from"], other["mismatches_to"]) == (1, 0)
    assert (entry["consensus_from"], entry["mismatches_from"]) == ("TGATGTCA", 1)
    assert (entry["consensus_to"], entry["mismatches_to"]) == ("TGANGTCA", 0)
    assert entry["deviance_to"] < entry["deviance_from"] - 0.05
    assert "TGATGTCA<=1 -> TGANGTCA<=0" in logged[0]
    now = CREB1 * lay.views + nl  # the weight moved to the exact view
    u, v = m.u.detach()[0], m.v.detach()[0]
    assert u[now] > 0 and v[now] > 0 and u[col] == 0 and v[col] == 0  # both sides
    assert bool(m.scanner.cons_edited[0, CREB1]) and int(m.scanner.cons_len[0, CREB1]) == 8
    ids, names = model_feature_names(m)
    assert ids[now].endswith("/c0:TGANGTCA")
    assert names[now] == "CREB1 [consensus edited to TGANGTCA, <=0 mismatches]"
    assert names[CREB1 * lay.views + nl + 3] == "CREB1 [core 8 bp, <=0 mismatches]"  # unedited
    # the memo serves the edited statistics; a fresh scan counts the same
    (enh, pro), (se, sp) = search[0], search[1]
    for side, st in zip((enh, pro), (se, sp), strict=True):
        assert torch.equal(m.scan_stats(side), st)
    m.scanner.clear_cache()
    for side, st in zip((enh, pro), (se, sp), strict=True):
        assert torch.equal(m.scan_stats(side), st)
    # saved and read with the weights; weights saved before edits existed load unedited
    back = build_model(m.cfg, seed=3)
    back.load_state_dict(m.state_dict(), strict=True)
    assert model_feature_names(back)[1][now] == names[now]
    legacy = build_model(m.cfg, seed=3)
    legacy.load_state_dict(
        {k: v for k, v in m.state_dict().items() if k != "scanner.cons_edited"}, strict=True
    )
    assert not legacy.scanner.cons_edited.any()


def test_a_consensus_that_the_sites_follow_is_left_alone_and_the_switch_is_respected():
    m = consensus_model()
    lay = m.scanner.layout
    reads_only(m, CREB1 * lay.views + lay.n_level_views)  # TGATGTCA, exact: the truth
    search, part = creb_pairs(m, "TGATGTCA", 6)
    before = [s.clone() for s in search[1]]
    assert refine_consensus(m, *search, part=part) == []
    assert all(torch.equal(a, b) for a, b in zip(before, search[1], strict=True))
    assert not m.scanner.cons_edited.any()
    # off (the default): nothing is edited even where an edit would pay
    reads_only(m, CREB1 * lay.views + lay.n_level_views + 1)
    search, part = creb_pairs(m, "TGANGTCA", 4)
    assert not m.cfg.motif_refine_consensus
    assert refine_views(m, *search, None, part=part) == ([], [])
    m.cfg = dataclasses.replace(m.cfg, motif_refine_consensus=True)
    levels, edited = refine_views(m, *search, None, part=part)
    assert levels == [] and [e["consensus_to"] for e in edited] == ["TGANGTCA"] * 2
