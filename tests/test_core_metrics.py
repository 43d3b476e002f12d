"""The one implementation of each scoring rule (epcli.core.metrics) and its users agreeing:
training's collapse check, evaluate's table, adapt's thresholds, predict's summary."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from epcli.core.metrics import (
    aupr,
    best_f1,
    best_f1_threshold,
    collapse_check,
    near_constant,
    threshold_at_recall,
)
from epcli.evaluate.metrics import evaluate_rows
from epcli.predict import ScoreStats
from helpers import EXAMPLE, REPO


def f1_at(y: np.ndarray, s: np.ndarray, t: float) -> float:
    called = s >= t
    tp = int((called & (y == 1)).sum())
    return 0.0 if tp == 0 else 2 * tp / (called.sum() + (y == 1).sum())


def test_best_f1_ties_go_to_the_highest_threshold():
    # thresholds 0.2 and 0.8 both give F1 = 2/3: call 2 of 2 positives with 4 calls (0.2),
    # or call 1 of 2 positives with 1 call (0.8)... F1(0.8) = 2*1/(1+2) = 2/3 as well
    y = np.array([1, 0, 0, 1])
    s = np.array([0.8, 0.2, 0.2, 0.2])
    assert f1_at(y, s, 0.2) == pytest.approx(f1_at(y, s, 0.8))
    assert best_f1_threshold(y, s) == 0.8
    p = best_f1(y, s)
    assert (p.precision, p.recall, p.f1) == pytest.approx((1.0, 0.5, 2 / 3))


def test_best_f1_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = (rng.random(60) < 0.3).astype(int)
        y[:2] = (0, 1)
        s = np.round(rng.random(60), 1)  # many ties
        cands = np.unique(s)
        f1s = np.array([f1_at(y, s, t) for t in cands])
        want = cands[np.flatnonzero(np.isclose(f1s, f1s.max()))].max()
        assert best_f1_threshold(y, s) == want


def test_threshold_at_recall_is_the_highest_reaching_it():
    rng = np.random.default_rng(1)
    y = (rng.random(200) < 0.3).astype(int)
    s = rng.random(200) + 0.3 * y
    t = threshold_at_recall(y, s, 0.8)
    recall = lambda t: ((s >= t) & (y == 1)).sum() / (y == 1).sum()  # noqa: E731
    assert recall(t) >= 0.8
    assert all(recall(c) < 0.8 for c in np.unique(s) if c > t)


def test_evaluate_and_adapt_use_the_same_threshold_rule():
    y = np.array([1, 0, 0, 1, 1, 0, 0, 0])
    s = np.array([0.9, 0.4, 0.4, 0.4, 0.1, 0.1, 0.1, 0.9])
    row, _ = evaluate_rows("c", s, y, None, bootstrap=0)
    assert row["best_f1_threshold"] == best_f1_threshold(y, s)
    assert row["threshold_at_recall"] == threshold_at_recall(y, s, 0.7)
    assert row["aupr"] == aupr(y, s)


def test_aupr_nan_without_both_classes():
    assert np.isnan(aupr(np.zeros(5), np.arange(5)))
    assert np.isnan(aupr(np.zeros(0), np.zeros(0)))
    assert aupr(np.array([0, 1]), np.array([0.1, 0.9])) == 1.0


def test_collapse_check():
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.25).astype(int)
    flat = collapse_check(np.full(200, 0.5), y)
    assert flat.collapsed and "all 200 scores are equal" in flat.reasons[0]
    near = collapse_check(0.5 + 1e-5 * rng.normal(size=1000))
    assert near.collapsed and "nearly constant" in near.reasons[0]
    # all predicted positive, random ranking: the diary's collapse (recall 1, precision = prev)
    c = collapse_check(0.6 + 0.3 * rng.random(200), y)
    assert c.collapsed and "predicted positive" in c.reasons[0]
    # all below 0.5 but a perfect ranking: imbalanced and uncalibrated, not collapsed
    good = collapse_check(0.1 + 0.3 * y + 0.05 * rng.random(200), y)
    assert good.single_class_at_0_5 and not good.collapsed
    assert good.aupr == 1.0 and good.prevalence == pytest.approx(y.mean())
    ok = collapse_check(np.linspace(0.1, 0.9, 200), y)
    assert not ok.collapsed and ok.fraction_predicted_positive == 0.5
    # without labels only the near-constant rule applies; one score is nothing to judge
    assert not collapse_check(0.6 + 0.3 * rng.random(200)).collapsed
    assert not collapse_check(np.array([0.3])).collapsed
    assert json.dumps(good.to_dict())  # the model card's record is JSON


def test_predict_summary_uses_the_same_rule():
    for scores in (np.full(50, 0.3), 0.3 + 1e-6 * np.arange(50), np.linspace(0, 1, 50)):
        stats = ScoreStats()
        stats.add(scores[:20])
        stats.add(scores[20:])
        assert stats.collapsed() == collapse_check(scores).collapsed
        assert stats.collapsed() == near_constant(scores.size, float(scores.std()))


def test_adapt_and_evaluate_report_the_same_threshold(cli, tmp_path):
    """adapt's best-F1 threshold on the support pairs equals evaluate's on the same pairs
    scored with that prototype (the bundled distance prior: many tied scores)."""
    lines = (EXAMPLE / "synth" / "U1.bedpe").read_text().splitlines()
    support = tmp_path / "support.bedpe"
    support.write_text("\n".join(lines[:301]) + "\n")
    proto = tmp_path / "u1.proto"
    model = REPO / "src" / "epcli" / "data" / "default_model"
    assert cli("adapt", model, support, "-o", proto).code == 0
    threshold = json.loads(proto.read_text())["threshold_best_f1"]
    scored = tmp_path / "scored.bedpe"
    r = cli("predict", support, "--prototype", proto, "-o", scored)
    assert r.code == 0, r.stderr
    table = tmp_path / "table.tsv"
    assert cli("evaluate", scored, "-o", table, "--bootstrap", "0").code == 0
    head, *rows = [line.split("\t") for line in table.read_text().splitlines()]
    u1 = dict(zip(head, rows[0], strict=True))
    assert float(u1["best_f1_threshold"]) == pytest.approx(threshold, abs=5e-5)  # 4 decimals


def test_overlaps_any_equals_bedtools_intersect(tmp_path):
    from pybedtools import BedTool

    from epcli.core.intervals import overlaps_any

    rng = np.random.default_rng(3)

    def intervals(n: int) -> pd.DataFrame:
        start = rng.integers(0, 5_000, n)
        return pd.DataFrame(
            {
                "chrom": rng.choice(["chr1", "chr2", "chrX"], n),
                "start": start,
                "end": start + rng.integers(1, 300, n),
            }
        )

    q, r = intervals(400), intervals(150)
    got = overlaps_any(q, r)
    qb = BedTool.from_dataframe(q.assign(name=np.arange(len(q)).astype(str)))
    hits = qb.intersect(BedTool.from_dataframe(r), u=True).to_dataframe()
    want = np.zeros(len(q), bool)
    want[hits["name"].astype(int).to_numpy()] = True
    assert 0 < got.sum() < len(q)
    assert np.array_equal(got, want)
