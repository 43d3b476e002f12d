"""The motif prior (JASPAR offline, motif files, log-odds) and the PWM scan."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from epcli.core.errors import EpcliError, UsageError
from epcli.model.encoder import one_hot
from epcli.model.motif_kernels import RES, strand_max
from epcli.model.motif_scan import MotifScanner
from epcli.model.motif_sites import (
    DEFAULT_LEVELS,
    N_LEVEL_VIEWS,
    N_SCANS,
    SITE_MODELS,
    VIEWS,
    scan_plan,
    site_matrices,
)
from epcli.motifs import CORE_MIN_SPECIFIC, DEFAULT_BACKGROUND, Motif, MotifSet, load_motifs
from helpers import TEST_DATA

TINY_MOTIFS = TEST_DATA / "tiny_motifs.jaspar"
CODE = {b: i for i, b in enumerate("ACGTN")}


def codes_of(seq: str) -> np.ndarray:
    return np.array([CODE[b] for b in seq], dtype=np.uint8)


def test_jaspar_loads_with_the_network_blocked():
    code = textwrap.dedent(
        """
        import socket
        def no_net(*a, **k):
            raise OSError("network blocked")
        socket.socket = no_net
        socket.create_connection = no_net
        socket.getaddrinfo = no_net
        from epcli.motifs import load_motifs
        ms = load_motifs("jaspar2024")
        by_id = dict(zip(ms.ids, ms.names))
        print(len(ms), by_id["MA0099.4"], by_id["MA0139.2"], ms.release, ms.checksum())
        print(len(load_motifs("jaspar2026")))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    n, fosjun, ctcf, release, checksum = first.split()
    # JASPAR 2024 CORE vertebrates, latest version per base ID: 879 matrices; 2026: 1,019
    assert (n, fosjun, ctcf, release) == ("879", "FOS::JUN", "CTCF", "JASPAR2024")
    assert len(checksum) == 16 and second == "1019"


def test_jaspar_is_non_redundant_and_selects_taxon():
    ms = load_motifs("jaspar2024")
    bases = [i.split(".")[0] for i in ms.ids]
    assert len(bases) == len(set(bases))  # one version per base ID
    assert "MA0099.4" in ms.ids and "MA0099.3" not in ms.ids  # the latest version
    plants = load_motifs("jaspar:2024:CORE:plants")
    assert 0 < len(plants) and not set(plants.ids) & set(ms.ids)
    with pytest.raises(UsageError, match="not available"):
        load_motifs("jaspar:1999")


def test_log_odds_by_hand():
    m = Motif("X1", "X", np.array([[8, 0], [0, 0], [0, 8], [0, 0]], dtype=float))
    lo = m.log_odds()
    bg = np.asarray(DEFAULT_BACKGROUND)
    # column 1: counts (8, 0, 0, 0) + 0.8 * background, normalised
    p = (np.array([8, 0, 0, 0]) + 0.8 * bg) / (8 + 0.8)
    assert lo[:, 0] == pytest.approx(np.log2(p / bg))
    # frequencies (columns summing to 1) are read as 100 sites
    mf = Motif("X2", "X", np.array([[1.0], [0.0], [0.0], [0.0]]))
    p1 = (np.array([100, 0, 0, 0]) + 0.8 * bg) / 100.8
    assert mf.log_odds()[:, 0] == pytest.approx(np.log2(p1 / bg))


def test_scan_equals_hand_computed_log_odds_on_both_strands():
    m = Motif("AC", "ACG", np.array([[9, 1, 0], [1, 9, 0], [0, 0, 10], [0, 0, 0]], float))
    w = m.log_odds()  # (4, 3)
    seq = "TTACGTTCGTAA"  # ACG at 2 (forward); CGT at 7 is ACG on the reverse strand
    x = one_hot(torch.as_tensor(codes_of(seq)).long()[None]).contiguous()
    s = strand_max(x, torch.as_tensor(w, dtype=torch.float32)[None]).numpy()[0, 0]
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    for i in range(len(seq) - 2):
        kmer = seq[i : i + 3]
        fwd = sum(w["ACGT".index(b), j] for j, b in enumerate(kmer))
        rc = "".join(comp[b] for b in reversed(kmer))
        rev = sum(w["ACGT".index(b), j] for j, b in enumerate(rc))
        assert s[i] == pytest.approx(max(fwd, rev), abs=1e-5), (i, kmer)
    best = float(w.max(axis=0).sum())
    assert s[2] == pytest.approx(best, abs=1e-5) and s[7] == pytest.approx(best, abs=1e-5)


def _scanner(ms: MotifSet, n_bins: int = 4) -> MotifScanner:
    w, lengths, _ = ms.log_odds_tensor()
    sc = MotifScanner(len(ms), w.shape[2], n_bins, 0, 1, finetune=False, cache_bytes=2**20)
    sc.set_matrices(w, lengths)
    return sc


def test_planted_motif_is_found_in_the_right_ring():
    ms = load_motifs(TINY_MOTIFS)
    ctcf = ms.ids.index("MA0139.2")
    site = ms.motifs[ctcf].consensus()
    rng = np.random.default_rng(0)
    length = 800
    bg = "".join(rng.choice(list("ACGT"), size=length))
    sc = _scanner(ms)
    base = sc(torch.as_tensor(codes_of(bg)).long()[None])[0, ctcf]
    # rings of an 800 bp window with 4 rings: 100 bp each side of the centre per ring
    for pos, ring in ((395, 0), (250, 1), (130, 2), (20, 3), (700, 3)):
        seq = bg[:pos] + site + bg[pos + len(site) :]
        st = sc(torch.as_tensor(codes_of(seq)).long()[None])[0, ctcf]
        gained = st[DEFAULT_LEVELS.index(0.95)] - base[DEFAULT_LEVELS.index(0.95)]  # (rings,)
        assert gained[ring] >= 1 and gained.sum() == pytest.approx(gained[ring]), (pos, gained)
        assert st[-1, ring] == pytest.approx(1.0, abs=1e-5)  # best relative score: the consensus


def test_scan_is_strand_symmetric_and_memoised():
    from epcli.model.encoder import reverse_complement

    ms = load_motifs(TINY_MOTIFS)
    sc = _scanner(ms)
    rng = np.random.default_rng(1)
    codes = torch.as_tensor(rng.integers(0, 4, size=(5, 600))).long()
    a = sc(codes)
    assert sc.scans == 5
    b = sc(reverse_complement(codes))
    assert sc.scans == 5  # both orientations of a window are one memo entry
    assert torch.equal(a, b)
    c = sc(torch.cat([codes, codes[:2]]))
    assert sc.scans == 5 and torch.equal(c[5:], a[:2])
    assert RES >= 1


def test_subset_scan_is_memoised_as_its_rows_only():
    ms = load_motifs(TINY_MOTIFS)
    sc = _scanner(ms)
    rng = np.random.default_rng(2)
    codes = torch.as_tensor(rng.integers(0, 4, size=(3, 600))).long()
    full = sc(codes)
    sc.clear_cache()
    subset = torch.tensor([0, 2])
    part = sc(codes, subset=subset)
    # the subset's rows equal the full scan's, the other motifs are 0
    assert torch.equal(part[:, subset], full[:, subset])
    others = [i for i in range(len(ms)) if i not in (0, 2)]
    assert float(part[:, others].abs().sum()) == 0.0
    # the memo holds 2 motif rows per window, not all of them, and serves them again
    assert sc.memo_bytes == 3 * full[0, :2].numel() * 4
    assert torch.equal(sc(codes, subset=subset), part) and sc.scans == 6


def test_scan_plan_scans_only_the_planned_scans_and_maps_views():
    ms = load_motifs(TINY_MOTIFS)
    sc = _scanner(ms)
    sc.set_matrices(*ms.log_odds_tensor()[:2], site_matrices(ms))
    rng = np.random.default_rng(5)
    codes = torch.as_tensor(rng.integers(0, 4, size=(4, 700))).long()
    ctcf = ms.ids.index("MA0139.2")
    site = ms.motifs[ctcf].consensus()
    codes[:, 100 : 100 + len(site)] = torch.tensor(["ACGT".index(b) for b in site])
    full = sc(codes)
    n_lev = len(DEFAULT_LEVELS)
    cons = slice(n_lev, n_lev + sum(len(mm) for _, _, mm in SITE_MODELS))
    assert float(full[:, ctcf, cons].sum()) > 0  # the planted consensus is counted
    # motif 0: a log-odds view only; CTCF: its consensus views only
    used = torch.zeros(len(ms) * VIEWS + 2, dtype=torch.bool)
    used[0] = True
    used[ctcf * VIEWS + N_LEVEL_VIEWS : (ctcf + 1) * VIEWS] = True
    plan = scan_plan(used, len(ms))
    assert plan.shape == (len(ms), N_SCANS)
    # every site model's consensus scan of CTCF (whole consensus, 8 bp and 6 bp cores)
    assert plan.nonzero().tolist() == [[0, 0]] + [[ctcf, s] for s in range(1, N_SCANS)]
    sc.clear_cache()
    part = sc(codes, subset=plan)
    assert torch.equal(part[:, 0, :n_lev], full[:, 0, :n_lev])
    assert torch.equal(part[:, 0, -1], full[:, 0, -1])
    assert float(part[:, 0, cons].abs().sum()) == 0.0
    assert torch.equal(part[:, ctcf, cons], full[:, ctcf, cons])
    assert float(part[:, ctcf, :n_lev].abs().sum()) == 0.0
    others = [i for i in range(len(ms)) if i not in (0, ctcf)]
    assert float(part[:, others].abs().sum()) == 0.0
    # the memo keeps the two planned motifs' rows per window and serves the plan again
    assert sc.memo_bytes == 4 * full[0, :2].numel() * 4
    scans = sc.scans
    assert torch.equal(sc(codes, subset=plan), part) and sc.scans == scans


def test_motif_files_jaspar_and_meme(tmp_path):
    ms = load_motifs(TINY_MOTIFS)
    assert ms.names == ["CREB1", "NFYA", "GABPA", "SP1", "FOS::JUN", "CTCF"]
    meme = tmp_path / "m.meme"
    meme.write_text(
        "MEME version 4\n\nALPHABET= ACGT\n\nMOTIF M1 ONE\n"
        "letter-probability matrix: alength= 4 w= 3 nsites= 10 E= 0\n"
        " 1.0 0.0 0.0 0.0\n 0.0 1.0 0.0 0.0\n 0.0 0.0 0.5 0.5\n\n"
        "MOTIF M2\nletter-probability matrix: alength= 4 w= 2\n 0.25 0.25 0.25 0.25\n"
        " 0 0 0 1\n"
    )
    mm = load_motifs(meme)
    assert mm.ids == ["M1", "M2"] and mm.names == ["ONE", "M2"]
    assert mm.motifs[0].counts[:, 2] == pytest.approx([0, 0, 5, 5])
    assert mm.motifs[1].counts[:, 0] == pytest.approx([5, 5, 5, 5])  # nsites 20 by default


@pytest.mark.parametrize(
    "text, msg",
    [
        ("A [ 1 2 ]\n", "text before the first"),
        (">M1 X\nA [ 1 2 ]\nC [ 1 2 ]\nG [ 1 2 ]\n", "needs 4 rows"),
        (">M1 X\nA [ 1 2 ]\nC [ 1 x ]\nG [ 1 2 ]\nT [ 1 -2 ]\n", "non-negative"),
        (">M1 X\nA [1]\nC [1]\nG [1]\nT [1]\n>M1 Y\nA [1]\nC [1]\nG [1]\nT [1]\n", "twice"),
    ],
)
def test_bad_motif_files_name_the_line(tmp_path, text, msg):
    p = tmp_path / "bad.jaspar"
    p.write_text(text)
    with pytest.raises(EpcliError, match=msg):
        load_motifs(p)


def test_unknown_motif_spec_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="neither a JASPAR release nor a file"):
        load_motifs(tmp_path / "missing.meme")


def test_iupac_consensus_follows_cavener_rules_and_trims_n():
    counts = np.array(
        [
            # A   C   G   T     per column
            [25, 25, 25, 25],  # N (trimmed)
            [90, 2, 4, 4],  # A
            [50, 2, 45, 3],  # R = A/G (top two 0.95, the first not twice the second)
            [40, 30, 20, 10],  # N (inner: kept)
            [1, 1, 1, 97],  # T
            [30, 30, 20, 20],  # N (trimmed)
        ],
        dtype=float,
    ).T
    allowed = Motif("X", "x", counts).iupac()
    assert allowed.shape == (4, 4)
    assert allowed[:, 0].tolist() == [True, False, False, False]
    assert allowed[:, 1].tolist() == [True, False, True, False]
    assert allowed[:, 2].all()
    assert allowed[:, 3].tolist() == [False, False, False, True]
    flat = Motif("Y", "y", np.full((4, 5), 25.0)).iupac()
    assert flat.shape == (4, 0)
    both = MotifSet([Motif("X", "x", counts), Motif("Y", "y", np.full((4, 5), 25.0))], "file")
    w, lengths = both.consensus_tensor()
    assert lengths.tolist() == [4, 0] and w.shape == (2, 4, 6) and w[0, :, 4:].sum() == 0


def _hand_consensus_hits(seq: str, allowed: np.ndarray, mm: tuple[int, ...]) -> list[int]:
    """Runs of RES start positions whose best site (either strand) has <= t mismatches."""
    k = allowed.shape[1]
    rc = allowed[::-1, ::-1]  # complement (A,C,G,T reversed) of the reversed columns
    best: dict[int, int] = {}
    for i in range(len(seq) - k + 1):
        kmer = ["ACGT".find(b) for b in seq[i : i + k]]
        f = sum(1 for j, b in enumerate(kmer) if b < 0 or not allowed[b, j])
        r = sum(1 for j, b in enumerate(kmer) if b < 0 or not rc[b, j])
        best[i // RES] = min(best.get(i // RES, k), f, r)
    return [sum(1 for v in best.values() if v <= t) for t in mm]


def test_consensus_hits_equal_hand_counted_mismatches_on_both_strands():
    counts = np.array(
        [[97, 1, 1, 1], [1, 1, 1, 97], [1, 97, 1, 1], [1, 1, 97, 1], [50, 1, 48, 1],
         [1, 1, 1, 97], [1, 97, 1, 1], [97, 1, 1, 1]], dtype=float,
    ).T  # fmt: skip  # ATCGRTCA
    ms = MotifSet([Motif("M1", "m1", counts)], "file")
    w, lengths, _ = ms.log_odds_tensor()
    sc = MotifScanner(1, w.shape[2], 1, 0, 1, finetune=False, cache_bytes=0)
    sc.set_matrices(w, lengths, site_matrices(ms))
    rng = np.random.default_rng(3)
    seq = list("".join(rng.choice(list("ACGT"), size=400)))
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    sites = ["ATCGATCA", "ATCGGTCA", "ATCCATCA", "TTCGATGA"]  # 0, 0, 1 and 2 mismatches
    for pos, site in zip((20, 120, 220, 320), sites, strict=True):
        if pos == 120:  # the reverse strand
            site = "".join(comp[b] for b in reversed(site))
        seq[pos : pos + 8] = list(site)
    seq[60:68] = list("ATCGANCA")  # a sequence N never matches
    seq = "".join(seq)
    st = sc(torch.as_tensor(codes_of(seq)).long()[None])[0, 0, :, 0]  # motif 0, ring 0
    first = len(DEFAULT_LEVELS)
    for _, core, allow in SITE_MODELS:  # the whole consensus (and any core site model)
        got = st[first : first + len(allow)].tolist()
        assert got == _hand_consensus_hits(seq, ms.motifs[0].iupac(core), allow), core
        first += len(allow)
    got = st[len(DEFAULT_LEVELS) : len(DEFAULT_LEVELS) + 3].tolist()
    assert got[0] >= 2 and got[1] >= got[0] + 2 and got[2] >= got[1] + 1


def test_core_consensus_is_the_most_informative_window():
    # 10 columns: a weak flank (near uniform), then the informative core GATAAG, then flank
    flat = [25, 25, 25, 25]
    core = {"G": [2, 2, 94, 2], "A": [94, 2, 2, 2], "T": [2, 2, 2, 94]}
    cols = [flat, flat] + [core[b] for b in "GATAAG"] + [flat, flat]
    m = Motif("G1", "gata", np.array(cols, dtype=float).T)
    whole = m.iupac()
    assert whole.shape[1] == 6  # the N flanks trimmed
    six = m.iupac(6)
    assert ["ACGT"[int(np.flatnonzero(c)[0])] for c in six.T] == list("GATAAG")
    # a core with fewer than CORE_MIN_SPECIFIC specific positions never matches
    assert m.iupac(4).shape[1] == 0 and CORE_MIN_SPECIFIC == 5
    assert m.iupac(8).shape[1] == 6  # the 8 most informative columns, N flanks trimmed
    allowed, lengths = site_matrices(MotifSet([m], "file"))
    assert allowed.shape[:2] == (len(SITE_MODELS), 1)
    # whole consensus, 8 and 6 bp cores: GATAAG; the 5 bp core: its first 5 (ties go left)
    assert lengths[:, 0].tolist() == [6, 6, 6, 5]
    five = m.iupac(5)
    assert ["ACGT"[int(np.flatnonzero(c)[0])] for c in five.T] == list("GATAA")


def test_levels_cores_gives_each_level_a_view_of_its_own():
    from epcli.model.motif_activity import MotifActivity
    from epcli.model.motif_sites import FINE_LEVELS, SiteLayout

    lay = SiteLayout("levels+cores")
    assert lay.levels == FINE_LEVELS and lay.views == len(FINE_LEVELS) + 7
    act = MotifActivity(3, 1, 2, lay)
    stats = torch.rand(5, 4, lay.n_stats, 2, generator=torch.Generator().manual_seed(0)) * 3
    raw = act.raw(stats)
    assert raw.shape == (5, 3 * lay.views + 1)
    pooled = stats.sum(-1)  # positional weights are 1 at initialisation
    nl = len(FINE_LEVELS)
    # motif 1: its six level views, then its consensus views
    assert torch.allclose(raw[:, lay.views : lay.views + nl], torch.log1p(pooled[:, 1, :nl]))
    assert torch.allclose(
        raw[:, lay.views + nl : 2 * lay.views], torch.log1p(pooled[:, 1, nl : nl + 7])
    )


def test_rate_levels_match_a_hand_computed_score_distribution():
    from epcli.model.motif_sites import rate_levels

    # two positions, one base +1 bit and the others -1: scores -2, 0, 2 with probabilities
    # 9/16, 6/16, 1/16 under a uniform background; the score range is 4 bits
    w = np.full((1, 4, 3), -1.0)
    w[0, 0, 0] = w[0, 2, 1] = 1.0
    w[0, :, 2] = 0.0  # padding past the motif's end
    lv = rate_levels(w, np.array([2]), (0.25,) * 4, rates=(2 * 7 / 16, 2 / 16, 0.1))
    # rate 7/8: P(score >= 0) = 7/16 <= rate / 2 -> score 0, halfway; rate 1/8: only the best
    # score (1/16); rate 0.1: even the best score (1/16 > 0.05) is too frequent -> 1
    # (each level half a 0.01-bit grid step below its score)
    assert lv.shape == (1, 3) and np.allclose(lv[0], [0.49875, 0.99875, 1.0], atol=1e-6)
    # a background rich in the favoured bases moves it: P(score >= 0) = 1 - 0.6^2 = 0.64 is
    # above 7/16 now, and only the best score (0.4^2 = 0.16) is rare enough
    bg = (0.4, 0.1, 0.4, 0.1)
    assert rate_levels(w, np.array([2]), bg, rates=(2 * 7 / 16,))[0, 0] == pytest.approx(0.99875)


def test_rate_levels_give_their_rate_on_background_sequence():
    from epcli.model.motif_sites import rate_levels

    ms = load_motifs()
    w, lengths, _ = ms.log_odds_tensor()
    i = ms.ids.index("MA0139.2")  # CTCF, 19 bp: the grid is fine at its scores
    k = int(lengths[i])
    rates = (3e-3, 3e-4)
    lv = rate_levels(w[i : i + 1], lengths[i : i + 1], ms.background, rates)[0]
    assert lv[0] < lv[1] < 1.0
    bg = np.asarray(ms.background) / np.sum(ms.background)
    x = np.random.default_rng(0).choice(4, size=(400_000, k), p=bg)
    score = w[i][x, np.arange(k)].sum(1)
    lo, hi = w[i, :, :k].min(0).sum(), w[i, :, :k].max(0).sum()
    rel = (score - lo) / (hi - lo)
    for level, rate in zip(lv, rates, strict=True):
        # one strand: about rate / 2 of the positions reach the level (at most, by the grid)
        assert 0.5 * rate / 2 < (rel >= level).mean() < 1.2 * rate / 2, (level, rate)
