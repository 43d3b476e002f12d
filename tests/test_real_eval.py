"""`epcli evaluate` on real BENGI Hi-C pairs (TransEPI's held-out chromosome folds).

The scored file is the distance baseline: score = -log(distance) from the table's own
distance column. Every per-cell figure is checked against an independent computation on
the raw table read with pandas (not through epcli's reader): a hand-written step-wise
average precision in numpy, and scikit-learn.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from epcli.core import schema

BENGI = Path(__file__).resolve().parents[1] / "example_data" / "pairs" / "transepi_bengi"
RAW_COLUMNS = [
    "label", "distance", "e_chrom", "e_start", "e_end", "e_name",
    "p_chrom", "p_start", "p_end", "p_name",
]  # fmt: skip
#: TransEPI's held-out chromosome folds (biomed-AI/TransEPI, dev/run_pred.sh).
FOLDS = [
    ["chr1", "chr10", "chr15", "chr21"],
    ["chr19", "chr3", "chr4", "chr7", "chrX"],
    ["chr13", "chr17", "chr2", "chr22", "chr9"],
    ["chr12", "chr14", "chr16", "chr18", "chr20"],
    ["chr11", "chr5", "chr6", "chr8"],
]

pytestmark = pytest.mark.slow


def step_ap(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision without interpolation: sum over distinct scores of dRecall * P."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(y)[last_of_tie]
    called = np.flatnonzero(last_of_tie) + 1
    d_tp = np.diff(np.r_[0, tp])
    return float(np.sum(d_tp * tp / called) / y.sum())


@pytest.fixture(scope="module")
def hic() -> pd.DataFrame:
    parts = []
    for f in sorted(BENGI.glob("*.HiC-Benchmark.v3.tsv.gz")):
        t = pd.read_csv(f, sep="\t", header=None, names=RAW_COLUMNS)
        t["cell"] = f.name.split(".")[0]
        parts.append(t)
    assert len(parts) == 6
    return pd.concat(parts, ignore_index=True)


def to_scored_bedpe(t: pd.DataFrame) -> str:
    score = -np.log(t["distance"].to_numpy(np.float64))
    out = pd.DataFrame(
        {
            "chrom1": t["e_chrom"], "start1": t["e_start"], "end1": t["e_end"],
            "chrom2": t["p_chrom"], "start2": t["p_start"], "end2": t["p_end"],
            "name": ".", "score": [f"{v:.12g}" for v in score], "strand1": ".",
            "strand2": ".", "cell": t["cell"], "label": t["label"],
        }
    )  # fmt: skip
    buf = io.StringIO()
    buf.write("#" + "\t".join(out.columns) + "\n")
    out.to_csv(buf, sep="\t", header=False, index=False)
    return buf.getvalue()


@pytest.mark.parametrize("fold", range(len(FOLDS)))
def test_distance_baseline_per_fold(cli, hic, tmp_path, fold):
    t = hic[hic["e_chrom"].isin(FOLDS[fold])].reset_index(drop=True)
    scored = tmp_path / f"fold{fold}.bedpe.gz"
    import gzip

    with gzip.open(scored, "wt") as fh:
        fh.write(to_scored_bedpe(t))
    out = tmp_path / "table.tsv"
    r = cli("evaluate", scored, "-o", out, "--bootstrap", "20" if fold == 0 else "0")
    assert r.code == 0, r.stderr
    table = pd.read_csv(out, sep="\t", na_values=["NA"], keep_default_na=False)
    assert tuple(table.columns) == schema.EVAL_COLUMNS
    cells = sorted(t["cell"].unique())
    assert table["cell"].tolist() == cells + [schema.EVAL_ALL]
    for cell in cells + [schema.EVAL_ALL]:
        sub = t if cell == schema.EVAL_ALL else t[t["cell"] == cell]
        row = table.set_index("cell").loc[cell]
        y = sub["label"].to_numpy()
        s = -np.log(sub["distance"].to_numpy(np.float64))
        assert row["n"] == len(sub)
        assert row["n_pos"] == int(y.sum())
        assert row["prevalence"] == pytest.approx(y.mean(), abs=5e-5)
        ap = step_ap(s, y)
        assert ap == pytest.approx(average_precision_score(y, s), abs=1e-12)
        assert row["aupr"] == pytest.approx(ap, abs=5e-5), cell
        assert row["auroc"] == pytest.approx(roc_auc_score(y, s), abs=5e-5), cell
        e_mid = (sub["e_start"] + sub["e_end"]).to_numpy() // 2
        p_mid = (sub["p_start"] + sub["p_end"]).to_numpy() // 2
        d_ap = step_ap(-np.abs(p_mid - e_mid).astype(np.float64), y)
        assert row["distance_aupr"] == pytest.approx(d_ap, abs=5e-5), cell
        # a distance score is the distance baseline up to ties and rounding
        assert abs(row["aupr"] - row["distance_aupr"]) < 0.01
        if fold == 0:
            assert row["aupr_lo"] <= row["aupr"] <= row["aupr_hi"]
        else:
            assert np.isnan(row["aupr_lo"])


def overlaps_any(q: pd.DataFrame, t: pd.DataFrame) -> np.ndarray:
    """Whether each interval of ``q`` overlaps an interval of ``t`` (columns chrom, start,
    end; half-open, >= 1 bp), with sorted starts and a running maximum of ends."""
    hit = np.zeros(len(q), dtype=bool)
    for chrom, qi in q.groupby("chrom").groups.items():
        ti = t[t["chrom"] == chrom]
        if ti.empty:
            continue
        order = np.argsort(ti["start"].to_numpy())
        starts = ti["start"].to_numpy()[order]
        max_end = np.maximum.accumulate(ti["end"].to_numpy()[order])
        qs = q.loc[qi, "start"].to_numpy()
        qe = q.loc[qi, "end"].to_numpy()
        k = np.searchsorted(starts, qe, side="left")  # training intervals starting before qe
        ok = k > 0
        hit_i = np.zeros(len(qi), dtype=bool)
        hit_i[ok] = max_end[k[ok] - 1] > qs[ok]
        hit[q.index.get_indexer(qi)] = hit_i
    return hit


def as_bedpe_frame(t: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "chrom1": t["e_chrom"], "start1": t["e_start"], "end1": t["e_end"],
            "chrom2": t["p_chrom"], "start2": t["p_start"], "end2": t["p_end"],
        }
    ).reset_index(drop=True)  # fmt: skip


def test_leakage_cell_only_split_vs_strict_fold():
    from epcli.evaluate import leakage

    train_parts = []
    for f in sorted(BENGI.glob("*.tsv.gz")):
        if f.name.split(".")[0] in ("GM12878", "HeLa"):
            train_parts.append(pd.read_csv(f, sep="\t", header=None, names=RAW_COLUMNS))
    train = as_bedpe_frame(pd.concat(train_parts, ignore_index=True))
    test = as_bedpe_frame(
        pd.read_csv(
            BENGI / "IMR90.HiC-Benchmark.v3.tsv.gz", sep="\t", header=None, names=RAW_COLUMNS
        )
    )
    anchors = leakage.anchors_from_bedpe(train)
    # cell-only split: the test cell is new, its chromosomes are not
    flags = leakage.audit(test, anchors)
    cols = ["chrom", "start", "end"]
    enh_t = train[["chrom1", "start1", "end1"]].set_axis(cols, axis=1)
    pro_t = train[["chrom2", "start2", "end2"]].set_axis(cols, axis=1)
    enh = overlaps_any(test[["chrom1", "start1", "end1"]].set_axis(cols, axis=1), enh_t)
    pro = overlaps_any(test[["chrom2", "start2", "end2"]].set_axis(cols, axis=1), pro_t)
    np.testing.assert_array_equal(flags["enh_seen"].to_numpy(), enh)
    np.testing.assert_array_equal(flags["pro_seen"].to_numpy(), pro)
    assert pro.mean() > 0.5  # most test promoters were seen in training: the split leaks
    # strict: training pairs on the held-out chromosomes removed -> nothing can overlap
    held = FOLDS[0]
    strict = leakage.audit(
        test[test["chrom1"].isin(held)],
        leakage.anchors_from_bedpe(train[~train["chrom1"].isin(held)]),
    )
    assert not strict["enh_seen"].any() and not strict["pro_seen"].any()
