"""Metrics: the evaluation table against scikit-learn, hand-counted examples, bootstrap."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from epcli.core import schema
from epcli.evaluate.metrics import bootstrap_aupr, evaluate_table, format_table


def brute_force_thresholds(s: np.ndarray, y: np.ndarray, target: float) -> dict:
    """Best-F1 and target-recall thresholds by trying every distinct score (pred: s >= t)."""
    best = None
    at = None
    for t in np.unique(s):  # increasing
        pred = s >= t
        tp = int((pred & (y == 1)).sum())
        fp = int((pred & (y == 0)).sum())
        p = tp / (tp + fp)
        r = tp / int(y.sum())
        f1 = 0.0 if tp == 0 else 2 * p * r / (p + r)
        if best is None or f1 >= best[3]:  # ">=": ties go to the higher threshold
            best = (t, p, r, f1)
        if r >= target:
            at = (t, p)
    return {
        "best_f1_threshold": best[0],
        "precision": best[1],
        "recall": best[2],
        "f1": best[3],
        "threshold_at_recall": at[0],
        "precision_at_recall": at[1],
    }


def test_columns_and_rows_order():
    rng = np.random.default_rng(0)
    n = 60
    t = evaluate_table(
        rng.random(n),
        rng.integers(0, 2, n),
        rng.integers(1000, 9000, n),
        np.array(["b", "a", "c"] * 20),
        bootstrap=10,
    )
    assert tuple(t.columns) == schema.EVAL_COLUMNS
    assert t["cell"].tolist() == ["a", "b", "c", schema.EVAL_ALL]
    assert t["n"].tolist() == [20, 20, 20, 60]


def test_matches_sklearn_with_ties():
    rng = np.random.default_rng(42)
    n = 400
    cells = rng.choice(["K562", "GM12878", "HeLa"], size=n)
    # one decimal: many tied scores
    scores = np.round(rng.normal(size=n), 1)
    labels = (rng.random(n) < 0.15 + 0.3 * (scores > 0.5)).astype(int)
    distance = rng.integers(2_000, 500_000, size=n)
    target = 0.6
    table = evaluate_table(scores, labels, distance, cells, bootstrap=0, target_recall=target)
    for name in ["GM12878", "HeLa", "K562", schema.EVAL_ALL]:
        m = np.ones(n, bool) if name == schema.EVAL_ALL else cells == name
        s, y = scores[m], labels[m]
        row = table.set_index("cell").loc[name]
        assert row["n"] == m.sum()
        assert row["n_pos"] == y.sum()
        assert row["prevalence"] == pytest.approx(y.mean())
        assert row["aupr"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
        assert row["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert row["distance_aupr"] == pytest.approx(
            average_precision_score(y, -distance[m]), abs=1e-12
        )
        expect = brute_force_thresholds(s, y, target)
        for key, value in expect.items():
            assert row[key] == pytest.approx(value, abs=1e-12), (name, key)
        assert np.isnan(row["aupr_lo"]) and np.isnan(row["aupr_hi"])  # bootstrap=0


def test_hand_counted_six_pairs():
    # score: 0.9 0.8 0.7 0.6 0.4 0.2 ; label: 1 0 1 1 0 0 (3 positives)
    # walking down the ranking (call score >= t):
    #   t=0.9: TP1 FP0  P=1    R=1/3  F1=0.5
    #   t=0.8: TP1 FP1  P=1/2  R=1/3  F1=0.4
    #   t=0.7: TP2 FP1  P=2/3  R=2/3  F1=2/3
    #   t=0.6: TP3 FP1  P=3/4  R=1    F1=6/7   <- best F1
    #   t=0.4: TP3 FP2  P=3/5  R=1    F1=3/4
    #   t=0.2: TP3 FP3  P=1/2  R=1    F1=2/3
    # AP = sum over recall steps of dR * P = 1/3*1 + 1/3*2/3 + 1/3*3/4 = 29/36
    # threshold at recall >= 0.6: the highest t with R >= 0.6 is 0.7 (P = 2/3)
    # AUROC: positives 0.9, 0.7, 0.6 vs negatives 0.8, 0.4, 0.2 -> 3 + 2 + 2 of 9 = 7/9
    # distance (bp): 10k 20k 50k 5k 100k 30k -> ranked by -distance:
    #   5k(1) 10k(1) 20k(0) 30k(0) 50k(1) 100k(0): AP = (1 + 1 + 3/5) / 3 = 13/15
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.2])
    labels = np.array([1, 0, 1, 1, 0, 0])
    distance = np.array([10_000, 20_000, 50_000, 5_000, 100_000, 30_000])
    t = evaluate_table(scores, labels, distance, None, bootstrap=0, target_recall=0.6)
    assert t["cell"].tolist() == [schema.EVAL_ALL]
    r = t.iloc[0]
    assert (r["n"], r["n_pos"], r["prevalence"]) == (6, 3, 0.5)
    assert r["aupr"] == pytest.approx(29 / 36)
    assert r["auroc"] == pytest.approx(7 / 9)
    assert r["best_f1_threshold"] == pytest.approx(0.6)
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((3 / 4, 1.0, 6 / 7))
    assert r["threshold_at_recall"] == pytest.approx(0.7)
    assert r["precision_at_recall"] == pytest.approx(2 / 3)
    assert r["distance_aupr"] == pytest.approx(13 / 15)
    assert t.attrs["warnings"] == []


def test_hand_counted_ties():
    # scores 0.9(1) 0.5(1) 0.5(0) 0.1(0): the tie at 0.5 is one step
    #   t=0.9: P=1 R=1/2 ; t=0.5: TP2 FP1 P=2/3 R=1 ; t=0.1: P=1/2 R=1
    # AP = 1/2*1 + 1/2*2/3 = 5/6; best F1: t=0.9 -> 2/3, t=0.5 -> 0.8, t=0.1 -> 2/3
    # recall >= 0.7 first reached (from the top) at t=0.5, precision 2/3
    t = evaluate_table([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0], None, None, bootstrap=0)
    r = t.iloc[0]
    assert r["aupr"] == pytest.approx(5 / 6)
    assert r["best_f1_threshold"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(0.8)
    assert r["threshold_at_recall"] == pytest.approx(0.5)
    assert r["precision_at_recall"] == pytest.approx(2 / 3)
    assert np.isnan(r["distance_aupr"])  # no distance given


def test_bootstrap_equals_sklearn_on_the_same_resamples():
    rng = np.random.default_rng(3)
    n = 250
    s = np.round(rng.normal(size=n), 1)
    y = (rng.random(n) < 0.3).astype(int)
    got = bootstrap_aupr(s, y, 7, np.random.default_rng(11))
    # draw the same resample indices independently and score them with scikit-learn
    idx = np.random.default_rng(11).integers(0, n, size=(7, n), dtype=np.int32)
    expect = [average_precision_score(y[i], s[i]) for i in idx if 0 < y[i].sum() < n]
    np.testing.assert_allclose(got, expect, rtol=0, atol=1e-12)


def test_bootstrap_skips_one_class_resamples():
    # 1 positive in 3 pairs: P(resample has no positive) = (2/3)^3 = 8/27
    got = bootstrap_aupr(
        np.array([0.1, 0.2, 0.3]), np.array([0, 1, 0]), 2000, np.random.default_rng(0)
    )
    assert 0 < got.size < 2000
    assert got.size / 2000 == pytest.approx(1 - 8 / 27 - 1 / 27, abs=0.04)  # none or all pos


def test_bootstrap_seeded_and_brackets_aupr():
    rng = np.random.default_rng(5)
    n = 3000
    s = rng.normal(size=n)
    y = (rng.random(n) < 0.1 + 0.2 * (s > 1)).astype(int)
    cells = np.where(rng.random(n) < 0.5, "A", "B")
    t1 = evaluate_table(s, y, None, cells, bootstrap=300, seed=7)
    t2 = evaluate_table(s, y, None, cells, bootstrap=300, seed=7)
    t3 = evaluate_table(s, y, None, cells, bootstrap=300, seed=8)
    np.testing.assert_array_equal(t1["aupr_lo"], t2["aupr_lo"])
    np.testing.assert_array_equal(t1["aupr_hi"], t2["aupr_hi"])
    assert not np.array_equal(t1["aupr_lo"], t3["aupr_lo"])
    assert (t1["aupr_lo"] <= t1["aupr"]).all() and (t1["aupr"] <= t1["aupr_hi"]).all()
    assert (t1["aupr_hi"] - t1["aupr_lo"] > 0.01).all()
    # a cell's interval depends on the seed and its own pairs only
    only_a = evaluate_table(
        s[cells == "A"],
        y[cells == "A"],
        None,
        ["A"] * int((cells == "A").sum()),
        bootstrap=300,
        seed=7,
    )
    assert only_a.iloc[0]["aupr_lo"] == t1.iloc[0]["aupr_lo"]


def test_one_class_cell_gives_na_and_warning():
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.1])
    labels = np.array([0, 0, 0, 1, 0, 1])
    cells = np.array(["neg", "neg", "neg", "mix", "mix", "mix"])
    t = evaluate_table(scores, labels, np.arange(6) + 1, cells, bootstrap=50)
    r = t.set_index("cell").loc["neg"]
    assert (r["n"], r["n_pos"], r["prevalence"]) == (3, 0, 0.0)
    for col in schema.EVAL_COLUMNS[4:]:
        assert np.isnan(r[col]), col
    assert any(w.startswith("neg:") and "only negatives" in w for w in t.attrs["warnings"])
    assert not np.isnan(t.set_index("cell").loc["mix", "aupr"])


def test_unknown_labels_left_out_and_counted():
    scores = np.array([0.9, 0.1, 0.5, 0.7, 0.3])
    labels = np.array([1, 0, -1, -1, 0])
    t = evaluate_table(scores, labels, None, None, bootstrap=0)
    assert t.iloc[0]["n"] == 3
    assert t.iloc[0]["aupr"] == pytest.approx(1.0)
    assert "2 of 5 pairs have no label" in t.attrs["warnings"][0]


def test_cell_without_labels_keeps_its_row():
    t = evaluate_table([0.2, 0.4, 0.6], [-1, 0, 1], None, ["x", "y", "y"], bootstrap=0)
    r = t.set_index("cell").loc["x"]
    assert r["n"] == 0 and np.isnan(r["prevalence"]) and np.isnan(r["aupr"])
    assert any(w.startswith("x: no labeled pairs") for w in t.attrs["warnings"])


def test_collapse_flagged_per_cell():
    rng = np.random.default_rng(1)
    s = np.concatenate([np.full(50, 0.5), rng.random(50)])
    y = np.tile([0, 1], 50)
    cells = np.array(["flat"] * 50 + ["fine"] * 50)
    t = evaluate_table(s, y, None, cells, bootstrap=0)
    flagged = [w for w in t.attrs["warnings"] if "collapsed" in w]
    assert [w.split(":")[0] for w in flagged] == ["flat"]
    # constant scores: the only threshold calls everything, precision = prevalence
    r = t.set_index("cell").loc["flat"]
    assert r["recall"] == 1.0 and r["precision"] == pytest.approx(0.5)
    assert r["aupr"] == pytest.approx(0.5)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="finite"):
        evaluate_table([0.1, np.nan], [0, 1], None, None)
    with pytest.raises(ValueError, match="labels"):
        evaluate_table([0.1, 0.2], [0, 2], None, None)
    with pytest.raises(ValueError, match="target_recall"):
        evaluate_table([0.1, 0.2], [0, 1], None, None, target_recall=0.0)
    with pytest.raises(ValueError, match="ALL"):
        evaluate_table([0.1, 0.2], [0, 1], None, ["ALL", "x"])


def test_format_table():
    t = evaluate_table([0.9, 0.8, 0.7, 0.6, 0.4, 0.2], [1, 0, 1, 1, 0, 0], None, None, bootstrap=0)
    lines = format_table(t).splitlines()
    assert lines[0].split("\t") == list(schema.EVAL_COLUMNS)
    fields = dict(zip(schema.EVAL_COLUMNS, lines[1].split("\t"), strict=True))
    assert fields["n"] == "6" and fields["aupr"] == "0.8056"  # 29/36
    assert fields["aupr_lo"] == "NA" and fields["distance_aupr"] == "NA"


@pytest.mark.slow
def test_bootstrap_speed_100k():
    rng = np.random.default_rng(0)
    n = 100_000
    s = rng.normal(size=n)
    y = (rng.random(n) < 0.05).astype(int)
    t0 = time.perf_counter()
    boot = bootstrap_aupr(s, y, 1000, np.random.default_rng(0))
    elapsed = time.perf_counter() - t0
    assert boot.size == 1000
    assert elapsed < 30, f"1000 resamples of 100k pairs took {elapsed:.1f}s"
