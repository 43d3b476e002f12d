"""A second site model for the semi-synthetic rule: a site is a position whose position
weight matrix (PWM) log-odds score passes a threshold, as FIMO- or HOMER-style scanners
call sites, instead of a match to the IUPAC consensus with a few mismatches.

Rules drawn with it (``motif_set = "jaspar-pwm:SEED"``) check that a model does not lean
on how the other rules define a site. The log-odds here are deliberately not the model's
own: a uniform background and a pseudocount of one site spread evenly
(:func:`logodds_from_counts`), where the model uses a human-genome background and 0.8.
"""

from __future__ import annotations

import numpy as np

#: Sequence code of N (A, C, G, T = 0..3).
_CODE_N = 4
#: Score any window holding an N gets (it never passes a threshold).
_N_SCORE = -1e9


def logodds_from_counts(counts: np.ndarray) -> np.ndarray:
    """Log2-odds of a count matrix against a uniform background.

    Parameters
    ----------
    counts : np.ndarray, shape (4, k)
        Counts (or frequencies) of A, C, G, T per position.

    Returns
    -------
    np.ndarray, shape (k, 4), float64
        ``log2(p / 0.25)`` with ``p = (count + 0.25) / (column sum + 1)``.
    """
    c = np.asarray(counts, dtype=np.float64)
    p = (c + 0.25) / (c.sum(axis=0, keepdims=True) + 1.0)
    return np.log2(p / 0.25).T


def pwm_scores(codes: np.ndarray, logodds: np.ndarray) -> np.ndarray:
    """Best-strand log-odds score at every start position.

    Parameters
    ----------
    codes : np.ndarray, shape (n, L), uint8
        Base codes A, C, G, T, N = 0..4 (``L >= k``).
    logodds : np.ndarray, shape (k, 4)

    Returns
    -------
    np.ndarray, shape (n, L - k + 1), float64
        The larger of the forward-strand score and the reverse-complement score; a window
        holding an N scores far below any threshold.
    """
    lo = np.asarray(logodds, dtype=np.float64)
    k = lo.shape[0]
    rc = lo[::-1, ::-1]  # reverse complement: positions reversed, A<->T and C<->G
    pad = np.vstack([lo.T, np.full((1, k), _N_SCORE)])  # (5, k), row 4 = N
    pad_rc = np.vstack([rc.T, np.full((1, k), _N_SCORE)])
    n_pos = codes.shape[1] - k + 1
    fwd = np.zeros((codes.shape[0], n_pos))
    rev = np.zeros_like(fwd)
    for j in range(k):
        col = codes[:, j : j + n_pos]
        fwd += pad[col, j]
        rev += pad_rc[col, j]
    return np.maximum(fwd, rev)


def pwm_hits(codes: np.ndarray, logodds: np.ndarray, min_score: float) -> np.ndarray:
    """Start positions whose best-strand score reaches ``min_score``.

    Parameters
    ----------
    codes : np.ndarray, shape (n, L), uint8
    logodds : np.ndarray, shape (k, 4)
    min_score : float

    Returns
    -------
    np.ndarray, shape (n, L - k + 1), bool
    """
    return pwm_scores(codes, logodds) >= min_score


def threshold_for_rate(sample: np.ndarray, logodds: np.ndarray, hits_per_window: float) -> float:
    """The score threshold that gives a mean number of hits per sample window.

    Parameters
    ----------
    sample : np.ndarray, shape (n, L), uint8
        Windows of real sequence (N-free) to calibrate on.
    logodds : np.ndarray, shape (k, 4)
    hits_per_window : float
        Target mean hits per window (both strands, a position counted once).

    Returns
    -------
    float
        A score; positions at or above it are sites. The empirical genome p-value of a
        site is about ``hits_per_window / (L - k + 1)``.
    """
    s = pwm_scores(sample, logodds).ravel()
    frac = min(max(hits_per_window / (sample.shape[1] - logodds.shape[0] + 1), 0.0), 1.0)
    return float(np.quantile(s, 1.0 - frac))
