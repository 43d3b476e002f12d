"""The motif prism's sparse warm start: validation cells choose the R_E prior, never the fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from epcli.model.motif_fit import warm_start
from epcli.model.motif_sites import VIEWS
from epcli.motifs import load_motifs
from helpers import TEST_DATA, tiny_motif_model

TINY = load_motifs(TEST_DATA / "tiny_motifs.jaspar")


def _model():
    return tiny_motif_model(n_free_filters=0, interaction_rank=2)


def _windows(rng: np.random.Generator, n: int, length: int, motif: str) -> np.ndarray:
    """Random windows; about half carry 1-3 consensus sites of ``motif``."""
    codes = rng.integers(0, 4, size=(n, length)).astype(np.uint8)
    site = [("ACGT".index(b)) for b in TINY.motifs[TINY.ids.index(motif)].consensus()]
    for i in range(n):
        for _ in range(rng.integers(0, 4) if rng.random() < 0.5 else 0):
            j = int(rng.integers(0, length - len(site)))
            codes[i, j : j + len(site)] = site
    return codes


def _data(seed: int = 0):
    """Four cells over shared windows: U_I from a CTCF-like enhancer motif and distance;
    the FOS::JUN-like enhancer motif raises the pairs of cells 0 and 2 and lowers those of
    cells 1 and 3."""
    rng = np.random.default_rng(seed)
    enh = _windows(rng, 60, 300, "MA0139.2")
    ap1 = _windows(rng, 60, 300, "MA0099.4")
    enh[:, 150:] = ap1[:, 150:]
    pro = rng.integers(0, 4, size=(30, 200)).astype(np.uint8)
    n = 1200
    ei, pi = rng.integers(0, 60, n), rng.integers(0, 30, n)
    cells = np.repeat([0, 1, 2, 3], n // 4)
    ld = rng.uniform(3.7, 5.7, n).astype(np.float32)
    ctcf = _count(enh, "MA0139.2")[ei]
    act = _count(enh, "MA0099.4")[ei]
    sign = np.where(cells % 2 == 1, -1.0, 1.0)
    logit = 1.2 * ctcf + 1.5 * sign * act - 1.5 * (ld - 4.7) - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    block = (ei >= 48).astype(bool)  # the last fifth of the enhancers: a held-out block
    return enh, pro, ei, pi, ld, y, cells, block


def _count(codes: np.ndarray, motif: str) -> np.ndarray:
    site = "".join(TINY.motifs[TINY.ids.index(motif)].consensus())
    seqs = ["".join("ACGT"[c] for c in row) for row in codes]
    c = np.array([s.count(site) for s in seqs], dtype=float)
    return (c - c.mean()) / (c.std() + 1e-9)


def test_validation_cell_takes_part_in_the_episodes_but_is_never_fitted():
    enh, pro, ei, pi, ld, y, cells, block = _data()
    train = cells < 3  # three training cells; cell 3 validates
    fitted = {}
    for name, episode_only in (("train only", None), ("with validation cell", ~train)):
        rows = np.arange(y.size) if episode_only is not None else np.flatnonzero(train)
        m = _model()
        res = warm_start(
            m, enh, pro, ei[rows], pi[rows], ld[rows], y[rows], cells[rows], block[rows],
            episode_only=None if episode_only is None else episode_only[rows],
        )  # fmt: skip
        fitted[name] = (m, res)
    (m0, r0), (m1, r1) = fitted["train only"], fitted["with validation cell"]
    # the validation cell adds its episodes (its prior from all three training cells)
    assert r0.re_prior["validated"] and r0.re_prior["episode_cells"] == 3
    assert r1.re_prior["validated"] and r1.re_prior["episode_cells"] == 4
    # ... and nothing was fitted on its pairs: U_I and its normalisation are the same
    assert r0.sparsity == r1.sparsity and r0.path == r1.path
    for name in ("bias", "w_e", "w_p", "dist", "u", "v"):
        torch.testing.assert_close(getattr(m0, name), getattr(m1, name), msg=name)
    for side in ("act_e", "act_p"):
        for buf in ("mean", "sd", "pos", "thr"):
            torch.testing.assert_close(
                getattr(getattr(m0, side), buf), getattr(getattr(m1, side), buf)
            )
    # the prior lets most move the motif whose effect differs between the training cells
    assert int(m1.motif_sd.argmax()) // VIEWS == TINY.ids.index("MA0099.4")


def test_one_cell_of_episodes_is_too_few_to_switch_adapting_on():
    enh, pro, ei, pi, ld, y, cells, block = _data()
    rows = np.flatnonzero(cells != 2)  # training cells 0 and 1, validation cell 3
    m = _model()
    res = warm_start(
        m, enh, pro, ei[rows], pi[rows], ld[rows], y[rows], cells[rows], block[rows],
        episode_only=cells[rows] == 3,
    )  # fmt: skip
    assert res.re_prior["validated"] is False and res.re_prior["prior_sd"] == 0.0
    assert res.re_prior["episode_cells"] == 0


def test_penalty_path_goes_on_while_its_strongest_penalty_scores_best():
    """With a small base penalty the best held-out AUPR is at the path's end, so the path is
    extended (x EXTEND) until a penalty scores worse, nothing is kept, or MAX_EXTEND; the
    converged fits keep fewer motifs as the penalty grows."""
    from epcli.model.motif_fit import EXTEND, MAX_EXTEND, PATH

    enh, pro, ei, pi, ld, y, cells, block = _data()
    m = _model()
    m.cfg.sparsity = 1e-3
    res = warm_start(m, enh, pro, ei, pi, ld, y, cells, block)
    lams = [r["sparsity"] for r in res.path]
    auprs = [r["heldout_aupr"] for r in res.path]
    counts = [r["active_motifs"] for r in res.path]
    assert len(PATH) < len(lams) <= len(PATH) + MAX_EXTEND
    np.testing.assert_allclose(lams[: len(PATH)], [1e-3 * p for p in PATH])
    for i in range(len(PATH), len(lams)):
        assert lams[i] == pytest.approx(EXTEND * lams[i - 1])
        assert auprs[i - 1] == max(auprs[:i]) and counts[i - 1] > 0  # why it went on
    ended = auprs[-1] < max(auprs) or counts[-1] == 0 or len(lams) == len(PATH) + MAX_EXTEND
    assert ended
    assert counts == sorted(counts, reverse=True)
    assert res.sparsity in lams and res.sparsity > lams[len(PATH) - 1]


def test_warm_start_fits_with_switched_off_terms():
    """With no distance term or no interaction the loss never reads those parameters: the
    fit runs, and they stay 0."""
    enh, pro, ei, pi, ld, y, cells, block = _data()
    for off in ("use_distance", "use_interaction"):
        m = tiny_motif_model(n_free_filters=0, interaction_rank=2, **{off: False})
        res = warm_start(m, enh, pro, ei, pi, ld, y, cells, block)
        assert res.active_motifs > 0, off
        held = [r["heldout_aupr"] for r in res.path]
        assert max(held) > y[block].mean() + 0.05, off  # above a random ranking
        if off == "use_distance":
            assert torch.count_nonzero(m.dist) == 0
        else:
            assert res.interaction_pairs == 0 and torch.count_nonzero(m.u) == 0


def test_a_path_fitted_beforehand_gives_the_same_warm_start():
    """Training compares site sets on :func:`penalty_path` and finishes the warm start of the
    one it keeps from that path: the same result as a warm start that fits it itself."""
    from epcli.model.motif_fit import penalty_path

    enh, pro, ei, pi, ld, y, cells, block = _data()
    m0, m1 = _model(), _model()
    r0 = warm_start(m0, enh, pro, ei, pi, ld, y, cells, block)
    pre = penalty_path(m1, enh, pro, ei, pi, ld, y, block)
    assert pre.path == r0.path and pre.best_aupr == max(r["heldout_aupr"] for r in r0.path)
    r1 = warm_start(m1, enh, pro, ei, pi, ld, y, cells, block, pre=pre)
    assert (r1.sparsity, r1.active_motifs, r1.re_prior) == (
        r0.sparsity,
        r0.active_motifs,
        r0.re_prior,
    )
    for name in ("bias", "w_e", "w_p", "dist", "u", "v", "gate", "motif_sd"):
        torch.testing.assert_close(getattr(m0, name), getattr(m1, name), msg=name)
