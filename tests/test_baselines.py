"""scikit-learn baselines: distance-only and canonical k-mer logistic regressions."""

from __future__ import annotations

import json
from itertools import product

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import epcli.model.baselines as bl
from epcli.core.arrays import PairData
from epcli.core.errors import EpcliError
from epcli.model.baselines import (
    DistanceBaseline,
    KmerBaseline,
    baseline_from_json,
    canonical_kmers,
    kmer_counts,
)

CODE = {b: i for i, b in enumerate("ACGTN")}


def enc(seq: str) -> np.ndarray:
    return np.array([CODE[b] for b in seq], dtype=np.uint8)


def make_pairs(enh_seqs, pro_seqs, enh_idx, pro_idx, distance, label) -> PairData:
    n = len(enh_idx)
    return PairData(
        enh_seqs=np.asarray(enh_seqs, dtype=np.uint8),
        pro_seqs=np.asarray(pro_seqs, dtype=np.uint8),
        enh_idx=np.asarray(enh_idx, dtype=np.int64),
        pro_idx=np.asarray(pro_idx, dtype=np.int64),
        distance=np.asarray(distance, dtype=np.int64),
        cell_idx=np.zeros(n, dtype=np.int64),
        label=np.asarray(label, dtype=np.int8),
        chrom=np.array(["chr1"] * n, dtype=object),
        enh_mid=np.arange(n, dtype=np.int64) * 1000,
        pro_mid=np.arange(n, dtype=np.int64) * 1000 + np.asarray(distance, dtype=np.int64),
        cells=["A"],
    )


def distance_data(seed: int = 0, n: int = 400) -> PairData:
    """Pairs whose interaction probability falls with distance."""
    rng = np.random.default_rng(seed)
    dist = rng.integers(1_000, 1_000_000, n)
    p = 1 / (1 + np.exp(2.0 * (np.log10(1 + dist / 1000) - 2.0)))
    y = (rng.random(n) < p).astype(np.int8)
    seqs = rng.integers(0, 4, size=(3, 40))
    return make_pairs(seqs, seqs, rng.integers(0, 3, n), rng.integers(0, 3, n), dist, y)


# ---------------------------------------------------------------------------- k-mers
def test_canonical_kmers_small_k():
    assert canonical_kmers(1) == ["A", "C"]
    # 16 dimers, 4 palindromes (AT, CG, GC, TA): (16 + 4) / 2 = 10 canonical
    assert canonical_kmers(2) == ["AA", "AC", "AG", "AT", "CA", "CC", "CG", "GA", "GC", "TA"]
    assert len(canonical_kmers(4)) == (256 + 16) // 2
    assert len(canonical_kmers(3)) == 32


def test_kmer_counts_hand_counted():
    # ACGTNACGG, k=2: AC CG GT [TN NA skipped] AC CG GG
    # canonical: AC, CG, AC (GT->AC), AC, CG, CC (GG->CC) => AC 3, CG 2, CC 1
    counts = kmer_counts(enc("ACGTNACGG")[None, :], 2)
    names = canonical_kmers(2)
    got = {names[j]: int(c) for j, c in enumerate(counts[0]) if c}
    assert got == {"AC": 3, "CG": 2, "CC": 1}
    # k=3 on TTTAAA: TTT TTA TAA AAA -> AAA (TTT, AAA) 2, TAA 1, TTA (rc TAA) -> TAA => 2
    counts3 = kmer_counts(enc("TTTAAA")[None, :], 3)
    names3 = canonical_kmers(3)
    got3 = {names3[j]: int(c) for j, c in enumerate(counts3[0]) if c}
    assert got3 == {"AAA": 2, "TAA": 2}


def _brute_counts(seq: str, k: int) -> dict[str, int]:
    comp = str.maketrans("ACGT", "TGCA")
    out: dict[str, int] = {}
    for i in range(len(seq) - k + 1):
        s = seq[i : i + k]
        if "N" in s:
            continue
        c = min(s, s.translate(comp)[::-1])
        out[c] = out.get(c, 0) + 1
    return out


def test_kmer_counts_match_brute_force_on_random_windows():
    rng = np.random.default_rng(3)
    seqs = rng.choice(5, size=(7, 61), p=[0.24, 0.24, 0.24, 0.24, 0.04]).astype(np.uint8)
    counts = kmer_counts(seqs, 4, chunk=3)  # several chunks
    names = canonical_kmers(4)
    for row, codes in zip(counts, seqs, strict=True):
        seq = "".join("ACGTN"[c] for c in codes)
        assert {names[j]: int(c) for j, c in enumerate(row) if c} == _brute_counts(seq, 4)
    # every canonical 4-mer is its own minimum over itself and its reverse complement
    comp = str.maketrans("ACGT", "TGCA")
    all4 = {
        min(s, s.translate(comp)[::-1]) for s in ("".join(p) for p in product("ACGT", repeat=4))
    }
    assert sorted(all4) == names


def test_kmer_features_computed_once_per_unique_anchor(monkeypatch):
    rng = np.random.default_rng(0)
    enh = rng.integers(0, 4, size=(5, 30))
    pro = rng.integers(0, 4, size=(4, 20))
    data = make_pairs(
        enh, pro, [0, 0, 1, 1, 1, 3], [2, 2, 2, 0, 0, 0], [5000] * 6, [0, 1, 0, 1, 0, 1]
    )
    seen = []
    real = bl.kmer_frequencies

    def spy(seqs, k):
        seen.append(len(seqs))
        return real(seqs, k)

    monkeypatch.setattr(bl, "kmer_frequencies", spy)
    x = KmerBaseline(k=2).features(data)
    assert seen == [3, 2]  # unique enhancers {0, 1, 3}, unique promoters {0, 2}
    assert x.shape == (6, 10 + 10 + 1)
    # row 2 is enhancer 1, promoter 2: frequencies of those windows, then log distance
    counts_e = kmer_counts(enh[1:2].astype(np.uint8), 2)[0]
    counts_p = kmer_counts(pro[2:3].astype(np.uint8), 2)[0]
    assert np.allclose(x[2, :10], counts_e / 29)  # 30 bp -> 29 dimers
    assert np.allclose(x[2, 10:20], counts_p / 19)
    assert np.isclose(x[2, 20], np.log10(1 + 5.0))


# ---------------------------------------------------------------------------- distance
def test_distance_baseline_sign_and_matches_sklearn():
    data = distance_data()
    model = DistanceBaseline().fit(data)
    assert model.coef_[0] < 0  # farther pairs interact less
    feat = np.log10(1 + data.distance / 1000.0)[:, None]
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    ref.fit(feat, data.label.astype(int))
    assert np.allclose(model.logit(data), ref.decision_function(feat), atol=1e-6)


def test_rows_subset_and_one_class_errors():
    data = distance_data(n=60)
    rows = np.flatnonzero(data.label == 1)
    with pytest.raises(EpcliError, match="both positive and negative"):
        DistanceBaseline().fit(data, rows=rows)
    bad = make_pairs(
        np.zeros((1, 10)), np.zeros((1, 10)), [0, 0, 0], [0, 0, 0], [10, 20, 30], [0, 1, -1]
    )
    with pytest.raises(EpcliError, match="labels 0/1"):
        DistanceBaseline().fit(bad)
    m = DistanceBaseline().fit(bad, rows=[0, 1])
    assert m.logit(bad, rows=[2]).shape == (1,)
    with pytest.raises(EpcliError, match="not fitted"):
        KmerBaseline().logit(bad)


# ---------------------------------------------------------------------------- JSON
def gc_data(seed: int = 0, n_anchor: int = 30, n: int = 200) -> PairData:
    """Positives use GC-rich enhancers."""
    rng = np.random.default_rng(seed)
    gc_rich = rng.choice(4, size=(n_anchor, 80), p=[0.1, 0.4, 0.4, 0.1])
    at_rich = rng.choice(4, size=(n_anchor, 80), p=[0.4, 0.1, 0.1, 0.4])
    enh = np.concatenate([gc_rich, at_rich])
    pro = rng.integers(0, 4, size=(10, 60))
    y = rng.integers(0, 2, n)
    e_idx = np.where(y == 1, rng.integers(0, n_anchor, n), rng.integers(n_anchor, 2 * n_anchor, n))
    return make_pairs(enh, pro, e_idx, rng.integers(0, 10, n), rng.integers(1000, 10**5, n), y)


@pytest.mark.parametrize("cls", [DistanceBaseline, KmerBaseline])
def test_json_round_trip_identical_logits(cls):
    data = distance_data() if cls is DistanceBaseline else gc_data()
    model = cls().fit(data)
    text = json.dumps(model.to_json())
    back = baseline_from_json(json.loads(text))
    assert type(back) is cls
    assert np.array_equal(back.logit(data), model.logit(data))
    if cls is KmerBaseline:
        assert back.k == 4
        with pytest.raises(EpcliError):
            DistanceBaseline.from_json(json.loads(text))


def test_kmer_baseline_learns_composition():
    train, test = gc_data(seed=0), gc_data(seed=1)
    model = KmerBaseline(k=3, seed=0).fit(train)
    s, y = model.logit(test), test.label
    # every positive outranks every negative: GC content separates them completely
    assert s[y == 1].min() > s[y == 0].max()
