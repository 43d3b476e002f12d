"""The motif-lr baseline: sparse logistic regression on motif scores, JSON round trip."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from epcli.core.arrays import PairData
from epcli.model.baselines import baseline_from_json
from epcli.model.motif_lr import MotifLRBaseline
from epcli.motifs import load_motifs
from helpers import TEST_DATA

TINY = load_motifs(TEST_DATA / "tiny_motifs.jaspar")


def planted_pairs(seed: int = 0, n_enh: int = 80, n_pro: int = 30, n: int = 600) -> PairData:
    """Enhancers with a FOS::JUN site interact (label 1), others do not."""
    rng = np.random.default_rng(seed)
    enh = rng.integers(0, 4, size=(n_enh, 300)).astype(np.uint8)
    pro = rng.integers(0, 4, size=(n_pro, 200)).astype(np.uint8)
    site = [("ACGT").index(b) for b in TINY.motifs[TINY.ids.index("MA0099.4")].consensus()]
    has = np.zeros(n_enh, bool)
    has[rng.permutation(n_enh)[: n_enh // 2]] = True
    for i in np.flatnonzero(has):
        enh[i, 140 : 140 + len(site)] = site
    e, p = rng.integers(0, n_enh, n), rng.integers(0, n_pro, n)
    return PairData(
        enh_seqs=enh, pro_seqs=pro, enh_idx=e, pro_idx=p,
        distance=rng.integers(5_000, 500_000, n), cell_idx=np.zeros(n, np.int64),
        label=has[e].astype(np.int8), chrom=np.array(["c"] * n, dtype=object),
        enh_mid=rng.integers(0, 10**6, n), pro_mid=rng.integers(0, 10**6, n), cells=["A"],
    )  # fmt: skip


def test_motif_lr_finds_the_planted_motif_and_round_trips():
    data = planted_pairs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation or convergence noise
        m = MotifLRBaseline(TINY, seed=0).fit(data)
    top = m.top_terms(3)
    assert top[0]["part"] == "enhancer" and top[0]["name"] == "FOS::JUN" and top[0]["effect"] > 0
    test = planted_pairs(seed=1)
    logit = m.logit(test)
    y = np.asarray(test.label)
    assert (
        logit[y == 1].min() > logit[y == 0].max() - 1e-9
        or np.mean(logit[y == 1][:, None] > logit[y == 0][None, :]) > 0.95
    )
    d = json.loads(json.dumps(m.to_json()))
    back = baseline_from_json(d)
    assert np.allclose(back.logit(test), logit)
    assert len(back.motifs) <= len(TINY)  # only the motifs the fit uses are kept
    d["coef"] = d["coef"][:-1]
    from epcli.core.errors import EpcliError

    with pytest.raises(EpcliError, match="inconsistent"):
        baseline_from_json(d)
