"""Tests of the semi-synthetic benchmark generator (epcli_bench.synth, benchmarks/make_synth.py)."""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyfaidx
import pytest

from epcli.core import schema
from epcli.core.errors import UsageError
from epcli.io.bedpe import read_bedpe
from epcli_bench import synth
from helpers import HG38_PIECE

REPO = Path(__file__).resolve().parents[2]
FASTA = REPO / "example_data" / "genome" / "hg38_chr20_0-3000000.fa"
EXAMPLE = REPO / "example_data" / "synth"

CODE = {b: i for i, b in enumerate("ACGTN")}

#: The configuration of example_data/synth (the command in its README).
EXAMPLE_CONFIG = synth.SynthConfig(
    seed=0,
    n_enhancers=600,
    n_promoters=200,
    pairs_per_cell=2000,
    composition_scale=1.5,
    train_cells=("T1", "T2", "T3", "T4", "T5"),
)


def enc(seq: str) -> np.ndarray:
    return np.array([CODE[b] for b in seq], dtype=np.uint8)


def regex_positions(seq: str, consensus: str) -> list[int]:
    """Start positions of exact IUPAC matches on either strand (pure-Python reference)."""
    classes = {k: "[" + v + "]" for k, v in synth.IUPAC.items()}
    found: set[int] = set()
    for cons in (consensus, synth.reverse_complement_iupac(consensus)):
        pat = re.compile("(?=" + "".join(classes[c] for c in cons) + ")")
        found.update(m.start() for m in pat.finditer(seq))
    return sorted(found)


# --------------------------------------------------------------------------- motifs
def test_reverse_complement_iupac():
    assert synth.reverse_complement_iupac("CCAAT") == "ATTGG"
    assert synth.reverse_complement_iupac("WGATAR") == "YTATCW"
    assert synth.reverse_complement_iupac("TGASTCA") == "TGASTCA"  # palindrome
    assert synth.reverse_complement_iupac("GGGRNTTTCC") == "GGAAANYCCC"


def test_iupac_matrix():
    mat = synth.iupac_matrix("RNA")
    assert mat.shape == (3, 5)
    assert mat[0].tolist() == [True, False, True, False, False]  # R = A/G
    assert mat[1].tolist() == [True, True, True, True, False]  # N: any base, never a seq N
    assert mat[2].tolist() == [True, False, False, False, False]
    with pytest.raises(UsageError):
        synth.iupac_matrix("ACX")


def test_planted_motif_both_strands():
    # CCAAT forward at 5, its reverse complement ATTGG at 14
    seq = "GGGGG" + "CCAAT" + "GGGG" + "ATTGG" + "GGG"
    hits = synth.motif_hits(enc(seq), "CCAAT")
    assert hits.shape == (len(seq) - 5 + 1,)
    assert np.flatnonzero(hits).tolist() == [5, 14]


def test_iupac_and_mismatch_by_hand():
    # WGATAR: AGATAG matches (fwd, 0); CTATCA is the reverse strand of TGATAG (at 8);
    # CGATAG has C where W is required: one mismatch (at 16)
    seq = "CC" + "AGATAG" + "CTATCA" + "CC" + "CGATAG" + "CC"
    assert np.flatnonzero(synth.motif_hits(enc(seq), "WGATAR", 0)).tolist() == [2, 8]
    assert np.flatnonzero(synth.motif_hits(enc(seq), "WGATAR", 1)).tolist() == [2, 8, 16]
    # a sequence N never matches, not even a motif N
    assert not synth.motif_hits(enc("CCNAT"), "CCNAT", 0).any()
    assert synth.motif_hits(enc("CCNAT"), "CCNAT", 1).tolist() == [True]


def test_motif_counts_by_hand():
    motifs = [
        synth.Motif("NFY", "CCAAT", 0, "test"),
        synth.Motif("EBOX", "CACGTG", 0, "test"),
    ]
    rows = np.stack(
        [
            enc("CCAATTTCACGTGTTATTGGT"),  # CCAAT at 0, E-box at 7, ATTGG at 15 -> 2, 1
            enc("TTTTTTTTTTTTTTTTTTTTT"),  # nothing -> 0, 0
        ]
    )
    assert synth.motif_counts(rows, motifs).tolist() == [[2, 1], [0, 0]]


def test_motif_hits_match_regex_reference():
    rng = np.random.default_rng(7)
    seq = "".join(rng.choice(list("ACGT"), 4000))
    codes = enc(seq)
    for m in synth.MOTIFS:
        got = np.flatnonzero(synth.motif_hits(codes, m.consensus, 0)).tolist()
        assert got == regex_positions(seq, m.consensus), m.name


def test_motif_features_standardised():
    counts = np.array([[0, 1], [1, 1], [3, 1]])
    x = np.log1p([0.0, 1.0, 3.0])
    f = synth.motif_features(counts)
    np.testing.assert_allclose(f[:, 0], (x - x.mean()) / x.std())
    assert f[:, 1].tolist() == [0.0, 0.0, 0.0]  # no variation -> zeros


# ------------------------------------------------------------------------ generated set
@pytest.fixture(scope="module")
def gen() -> tuple[pd.DataFrame, synth.SynthTruth]:
    return synth.generate_with_truth(synth.SynthConfig(seed=0), FASTA)


def test_columns_and_schema(gen):
    df, _ = gen
    assert tuple(df.columns) == synth.SYNTH_COLUMNS
    assert tuple(df.columns[:10]) == schema.BEDPE_STANDARD
    assert set(df[synth.COL_SPLIT]) == {"train", "test"}
    assert set(df[schema.COL_LABEL]) == {0, 1}
    assert (df["chrom1"] == "chr20").all() and (df["chrom2"] == "chr20").all()


def test_prevalence_per_cell(gen):
    df, truth = gen
    cfg = truth.config
    g = df.groupby(schema.COL_CELL)
    assert set(g.groups) == set(cfg.cells)
    for cell, part in g:
        assert len(part) == cfg.pairs_per_cell
        assert abs(part[schema.COL_LABEL].mean() - cfg.prevalence) <= 0.05, cell
        # the bias is solved so that the mean true probability hits the target
        assert abs(part[synth.COL_TRUE_PROB].mean() - cfg.prevalence) < 1e-6, cell


def test_true_prob_is_sigmoid_of_terms(gen):
    df, truth = gen
    t = truth.terms
    logit = t["compat"] + t["activity"] + t["decay"] + t["bias"]
    np.testing.assert_allclose(df[synth.COL_TRUE_PROB], 1 / (1 + np.exp(-logit)), rtol=1e-9)
    # decay is -c * log10(midpoint distance)
    mid1 = (df["start1"] + df["end1"]) // 2
    mid2 = (df["start2"] + df["end2"]) // 2
    dist = (mid2 - mid1).abs()
    np.testing.assert_allclose(t["decay"], -truth.config.distance_slope * np.log10(dist))
    assert dist.min() >= truth.config.min_distance
    assert dist.max() <= truth.config.max_distance


def test_same_seed_same_output_other_seed_differs(gen):
    df, _ = gen
    again = synth.generate(synth.SynthConfig(seed=0), FASTA)
    pd.testing.assert_frame_equal(df, again)
    other = synth.generate(synth.SynthConfig(seed=1), FASTA)
    assert len(other) == len(df)
    assert not np.array_equal(other["label"].to_numpy(), df["label"].to_numpy())
    assert not np.array_equal(other["start1"].to_numpy(), df["start1"].to_numpy())


def _windows(df: pd.DataFrame, cfg: synth.SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """Enhancer and promoter windows (n, 2) [start, end), centred on midpoints."""
    out = []
    for s, e, length in (
        ("start1", "end1", cfg.enhancer_window),
        ("start2", "end2", cfg.promoter_window),
    ):
        mid = (df[s].to_numpy() + df[e].to_numpy()) // 2
        out.append(np.stack([mid - length // 2, mid - length // 2 + length], axis=1))
    return out[0], out[1]


def test_no_test_sequence_in_train_pairs(gen):
    df, truth = gen
    tr = df[df[synth.COL_SPLIT] == "train"]
    te = df[df[synth.COL_SPLIT] == "test"]
    assert len(te) > 0.1 * len(df) and len(tr) > 0.5 * len(df)
    tr_iv = np.concatenate(_windows(tr, truth.config) + (tr[["start1", "end1"]].to_numpy(),))
    te_iv = np.concatenate(_windows(te, truth.config) + (te[["start2", "end2"]].to_numpy(),))
    tr_iv, te_iv = np.unique(tr_iv, axis=0), np.unique(te_iv, axis=0)
    overlap = (te_iv[:, None, 0] < tr_iv[None, :, 1]) & (tr_iv[None, :, 0] < te_iv[:, None, 1])
    assert not overlap.any()


def test_anchors_disjoint_and_windows_inside_contig(gen):
    df, truth = gen
    anchors = np.unique(
        np.concatenate([df[["start1", "end1"]].to_numpy(), df[["start2", "end2"]].to_numpy()]),
        axis=0,
    )
    anchors = anchors[np.argsort(anchors[:, 0])]
    assert (anchors[1:, 0] >= anchors[:-1, 1]).all()  # no two anchors overlap
    fa = pyfaidx.Fasta(str(FASTA))
    length = len(fa["chr20"])
    ew, pw = _windows(df.drop_duplicates(["start1", "start2"]), truth.config)
    for win in (np.unique(ew, axis=0), np.unique(pw, axis=0)):
        assert win.min() >= 0 and win.max() <= length
        for s, e in win[:: max(1, len(win) // 40)]:
            assert "N" not in str(fa["chr20"][int(s) : int(e)]).upper()
    fa.close()


def test_unseen_cells_have_new_tf_sets(gen):
    _, truth = gen
    cfg = truth.config
    train_sets = [set(truth.active[c]) for c in cfg.train_cells]
    for cell in cfg.unseen_cells:
        s = set(truth.active[cell])
        assert len(s) == cfg.n_active and s <= set(synth.CELL_TFS)
        assert all(s != t for t in train_sets), cell


def test_sequence_carries_signal(gen):
    df, _ = gen
    oracle = synth.oracle_aupr(df)
    dist = synth.distance_aupr(df)
    for cell in oracle.index:
        assert oracle[cell] > dist[cell] + 0.15, cell
    # the distance floor, recomputed independently
    from sklearn.metrics import average_precision_score

    part = df[df["cell"] == "T1"]
    d = ((part["start2"] + part["end2"]) // 2 - (part["start1"] + part["end1"]) // 2).abs()
    assert dist["T1"] == pytest.approx(average_precision_score(part["label"], -d))


def test_cell_term_changes_labels_on_same_pairs(gen):
    df, truth = gen
    t = truth.terms
    a = df["cell"] == "T1"
    b = df["cell"] == "T2"
    key = ["start1", "start2"]
    assert (df.loc[a, key].to_numpy() == df.loc[b, key].to_numpy()).all()  # same pairs
    # the cell-invariant terms agree, the activity term does not
    np.testing.assert_array_equal(t.loc[a, "compat"].to_numpy(), t.loc[b, "compat"].to_numpy())
    pa, pb = df.loc[a, "true_prob"].to_numpy(), df.loc[b, "true_prob"].to_numpy()
    assert np.corrcoef(pa, pb)[0, 1] < 0.9
    assert np.mean(df.loc[a, "label"].to_numpy() != df.loc[b, "label"].to_numpy()) > 0.15


def test_activity_follows_active_motifs(gen):
    """The cell term rises with the count of an active TF's motif (independent regex count)."""
    df, truth = gen
    exact = {m.name: m for m in synth.MOTIFS if m.max_mismatch == 0}
    fa = pyfaidx.Fasta(str(FASTA))
    checked = 0
    for cell in truth.config.cells:
        rows = df[df["cell"] == cell].drop_duplicates("start1")
        act = truth.terms.loc[rows.index, "activity"].to_numpy()
        ew, _ = _windows(rows, truth.config)
        seqs = [str(fa["chr20"][int(s) : int(e)]).upper() for s, e in ew]
        for tf in truth.active[cell]:
            if tf not in exact:
                continue
            n = np.array([len(regex_positions(s, exact[tf].consensus)) for s in seqs])
            assert np.corrcoef(np.log1p(n), act)[0, 1] > 0.2, (cell, tf)
            checked += 1
    fa.close()
    assert checked >= 3


def test_write_bedpe_roundtrip(gen, tmp_path):
    df, _ = gen
    part = df[df["cell"] == "U1"]
    out = tmp_path / "U1.bedpe"
    synth.write_bedpe(part, out)
    first = out.read_text().splitlines()[0]
    assert first == "#" + "\t".join(synth.SYNTH_COLUMNS)
    back = read_bedpe(out)
    assert len(back) == len(part)
    assert back["label"].tolist() == part["label"].tolist()
    assert back["start2"].tolist() == part["start2"].tolist()
    np.testing.assert_allclose(back["true_prob"].astype(float), part["true_prob"], atol=1e-6)


@pytest.fixture(scope="module")
def gen_example() -> tuple[pd.DataFrame, synth.SynthTruth]:
    return synth.generate_with_truth(EXAMPLE_CONFIG, FASTA)


def test_example_data_is_reproducible(gen_example):
    """example_data/synth was written by the documented command."""
    df, _ = gen_example
    rule = json.loads((EXAMPLE / "rule.json").read_text())
    assert rule["config"]["composition_scale"] == EXAMPLE_CONFIG.composition_scale
    assert rule["config"]["pairs_per_cell"] == EXAMPLE_CONFIG.pairs_per_cell
    for cell in ("T1", "T5", "U2"):
        back = read_bedpe(EXAMPLE / f"{cell}.bedpe")
        part = df[df["cell"] == cell]
        assert back["start1"].tolist() == part["start1"].tolist()
        assert back["label"].tolist() == part["label"].tolist()


def test_config_validation():
    with pytest.raises(UsageError):
        synth.SynthConfig(prevalence=1.5).validate()
    with pytest.raises(UsageError):
        synth.SynthConfig(n_blocks=2, test_blocks=(0, 1)).validate()
    with pytest.raises(UsageError):
        synth.SynthConfig(train_cells=("A", "A")).validate()
    with pytest.raises(UsageError, match="candidate pairs"):
        synth.generate(synth.SynthConfig(n_enhancers=8, n_promoters=4, pairs_per_cell=500), FASTA)


def test_make_synth_script(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("make_synth", REPO / "benchmarks/make_synth.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "set"
    args = ["-o", str(out), "--seed", "3", "--n-enhancers", "80", "--n-promoters", "24"]
    args += ["--pairs-per-cell", "200", "--train-cells", "A,B", "--unseen-cells", "C"]
    assert mod.main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "A.bedpe",
        "B.bedpe",
        "C.bedpe",
        "rule.json",
        "summary.tsv",
    ]
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    c = read_bedpe(out / "C.bedpe")
    row = summary[(summary["cell"] == "C") & (summary["split"] == "all")].iloc[0]
    assert row["n"] == len(c) == 200 and row["n_pos"] == c["label"].sum()
    assert row["role"] == "unseen"
    rule = json.loads((out / "rule.json").read_text())
    assert rule["genome"] == FASTA.name and rule["config"]["seed"] == 3
    assert sorted(rule["active"]) == ["A", "B", "C"] and rule["roles"]["C"] == "unseen"
    assert mod.main(args) != 0  # refuses to overwrite without --force
    bad = tmp_path / "bad"
    assert mod.main(["-o", str(bad), "--cell-composition-scale", "-1"]) == 2
    assert "cell_composition_scale must be >= 0, got -1.0" in capsys.readouterr().err
    assert not bad.exists()  # nothing written for a bad option


def test_gc_content():
    codes = np.array([enc("GGCCAT"), enc("ATNNNN"), enc("NNNNNN")])
    np.testing.assert_allclose(synth.gc_content(codes), [4 / 6, 0.0, 0.5])


def test_composition_term(gen, gen_example):
    """The GC term is off by default and, when on, is g * z(z(GC_E) + z(GC_P)) of the windows."""
    _, truth = gen
    assert (truth.terms["composition"] == 0).all()
    df, truth = gen_example
    t = truth.terms
    logit = t["compat"] + t["activity"] + t["composition"] + t["decay"] + t["bias"]
    np.testing.assert_allclose(df[synth.COL_TRUE_PROB], 1 / (1 + np.exp(-logit)), atol=1e-9)
    # recompute GC of the model's windows independently, with pyfaidx and str.count
    cfg = truth.config
    fa = pyfaidx.Fasta(str(FASTA))
    part = df[df["cell"] == "T1"].iloc[:300]

    def gc(chrom, start, end, window):
        mid = (start + end) // 2
        s = str(fa[chrom][mid - window // 2 : mid - window // 2 + window]).upper()
        acgt = sum(s.count(b) for b in "ACGT")
        return (s.count("G") + s.count("C")) / acgt

    ge = [gc(r.chrom1, r.start1, r.end1, cfg.enhancer_window) for r in part.itertuples()]
    gp = [gc(r.chrom2, r.start2, r.end2, cfg.promoter_window) for r in part.itertuples()]
    comp = t["composition"].to_numpy()[: len(part)]
    # z-scores are over all anchors, so check the linear relation, not the values
    x = np.column_stack([ge, gp, np.ones(len(part))])
    coef, res, *_ = np.linalg.lstsq(x, comp, rcond=None)
    assert coef[0] > 0 and coef[1] > 0
    assert np.allclose(x @ coef, comp, atol=1e-6)
    fa.close()


def test_cell_composition_term(gen):
    """h * s_c * z(GC_E): signs alternate over the cells; zero-shot uses the training mean."""
    df0, truth0 = gen
    assert (truth0.terms["cell_composition"] == 0).all()
    cfg = synth.SynthConfig(seed=0, cell_composition_scale=2.0)
    df, truth = synth.generate_with_truth(cfg, FASTA)
    t = truth.terms
    logit = t["compat"] + t["activity"] + t["cell_composition"] + t["decay"] + t["bias"]
    np.testing.assert_allclose(df[synth.COL_TRUE_PROB], 1 / (1 + np.exp(-logit)), atol=1e-9)
    # the same pairs in every cell: T2 and U1 carry minus T1's term, T3 and U2 T1's term
    term = {c: t.loc[df["cell"] == c, "cell_composition"].to_numpy() for c in cfg.cells}
    assert term["T1"].std() > 1.0
    np.testing.assert_allclose(term["T2"], -term["T1"])
    np.testing.assert_allclose(term["T3"], term["T1"])
    np.testing.assert_allclose(term["U1"], -term["T1"])
    np.testing.assert_allclose(term["U2"], term["T1"])
    # T1's term is a rising linear function of the enhancer window's GC (pyfaidx, str.count)
    fa = pyfaidx.Fasta(str(FASTA))
    part = df[df["cell"] == "T1"].iloc[:200]
    gc = []
    for r in part.itertuples():
        mid = (r.start1 + r.end1) // 2
        w = str(fa[r.chrom1][mid - 1500 : mid + 1500]).upper()
        gc.append((w.count("G") + w.count("C")) / sum(w.count(b) for b in "ACGT"))
    fa.close()
    slope, icpt = np.polyfit(gc, term["T1"][:200], 1)
    assert slope > 0
    np.testing.assert_allclose(slope * np.array(gc) + icpt, term["T1"][:200], atol=1e-6)
    # the zero-shot oracle adds the training cells' mean sign (+1 - 1 + 1) / 3 of the term
    base = synth.generate_with_truth(synth.SynthConfig(seed=0), FASTA)[1].terms
    rows = (df["cell"] == "U1").to_numpy()
    np.testing.assert_allclose(
        t["zeroshot_logit"][rows] - base["zeroshot_logit"][rows], term["T1"] / 3, atol=1e-9
    )
    assert not np.array_equal(df[schema.COL_LABEL], df0[schema.COL_LABEL])


def test_composition_scale_validation():
    with pytest.raises(UsageError, match="cell_composition_scale"):
        synth.SynthConfig(cell_composition_scale=-0.5).validate()
    with pytest.raises(UsageError, match="composition_scale"):
        synth.SynthConfig(composition_scale=-1.0).validate()
    with pytest.raises(UsageError, match="compat_scale"):
        synth.SynthConfig(compat_scale=float("nan")).validate()


def test_iupac_consensus_by_hand():
    counts = np.array(
        [
            # N    A    R    C    N
            [25, 90, 45, 2, 30],
            [25, 4, 5, 95, 20],
            [25, 3, 45, 1, 25],
            [25, 3, 5, 2, 25],
        ],
        dtype=float,
    )
    assert synth.iupac_consensus(counts) == "ARC"  # Ns trimmed at both ends


def test_jaspar_rule_draws_other_real_tfs(tmp_path):
    from epcli.io.genome import Genome

    with Genome(HG38_PIECE) as g:
        codes, _ = g.window("chr20", 1_000_000, 1_600_000)
    rule = synth.jaspar_rule("jaspar:3", codes)
    assert len(rule.motifs) == 16 and len(rule.interactions) == 8 and len(rule.cell_tfs) == 8
    names = {m.name for m in rule.motifs}
    assert not names & {m.name for m in synth.MOTIFS}
    assert all(a in names and b in names for a, b, _ in rule.interactions)
    assert all(m.source.startswith("JASPAR 2024 MA") for m in rule.motifs)
    assert synth.jaspar_rule("jaspar:3", codes) == rule  # seeded
    assert synth.jaspar_rule("jaspar:4", codes) != rule
    with pytest.raises(UsageError, match="motif_set"):
        synth.SynthConfig(motif_set="jaspar:x").validate()


def test_pwm_scores_by_hand_on_both_strands():
    from epcli_bench.pwm_sites import logodds_from_counts, pwm_hits, pwm_scores

    counts = np.array([[8, 0], [0, 0], [0, 0], [0, 8]], dtype=float)  # "AT", a palindrome
    lo = logodds_from_counts(counts)
    match, miss = np.log2((8.25 / 9) / 0.25), np.log2((0.25 / 9) / 0.25)
    assert np.allclose(lo, [[match, miss, miss, miss], [miss, miss, miss, match]])
    counts = np.array([[8, 0], [0, 8], [0, 0], [0, 0]], dtype=float)  # "AC"; reverse: "GT"
    lo = logodds_from_counts(counts)
    got = pwm_scores(enc("ACGTNAC")[None, :], lo)[0]
    # starts AC, CG, GT, TN, NA, AC: AC matches forward, GT on the reverse strand, CG neither
    assert got[0] == pytest.approx(2 * match)
    assert got[1] == pytest.approx(2 * miss)
    assert got[2] == pytest.approx(2 * match)
    assert got[3] < -1e8 and got[4] < -1e8  # windows holding an N never pass
    assert got[5] == pytest.approx(2 * match)
    assert pwm_hits(enc("ACGTNAC")[None, :], lo, 2 * match - 1e-9)[0].tolist() == [
        True, False, True, False, False, True,
    ]  # fmt: skip


def test_jaspar_pwm_rule_sites_are_score_hits():
    from epcli.io.genome import Genome
    from epcli_bench.pwm_sites import pwm_scores

    with Genome(HG38_PIECE) as g:
        codes, _ = g.window("chr20", 1_000_000, 1_600_000)
    rule = synth.jaspar_rule("jaspar-pwm:3", codes)
    assert len(rule.motifs) == 16 and all(m.pwm is not None for m in rule.motifs)
    assert synth.jaspar_rule("jaspar-pwm:3", codes) == rule  # seeded
    win = codes[: 60 * 3000].reshape(60, 3000)
    rates = []
    for m in rule.motifs:
        lo = np.asarray(m.pwm)
        hits = synth.site_hits(win, m)
        assert (hits == (pwm_scores(win, lo) >= m.min_score)).all()
        rates.append(hits.sum(axis=1).mean())
        best, worst = lo.max(axis=1).sum(), lo.min(axis=1).sum()
        assert (m.min_score - worst) / (best - worst) >= 0.6
    # thresholds target 0.3-3 sites per 3 kb window on the calibration sample
    assert 0.2 < np.median(rates) < 4
    # a rule read back from rule.json (lists, not tuples) counts the same sites
    motifs = tuple(synth.Motif(**json.loads(json.dumps(asdict(m)))) for m in rule.motifs[:2])
    assert (synth.motif_counts(win, motifs) == synth.motif_counts(win, rule.motifs[:2])).all()
    synth.SynthConfig(motif_set="jaspar-pwm:3").validate()
    with pytest.raises(UsageError, match="motif_set"):
        synth.SynthConfig(motif_set="jaspar-pwm:x").validate()
