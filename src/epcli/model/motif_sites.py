"""Site definitions of the motif-grounded model: the log-odds levels and the consensus site
models a matrix is counted with, and the shapes (count channels, statistics, views, scans)
that follow from a model's site model set (``ModelConfig.motif_sites``).

See :mod:`epcli.model.motif_scan` for the scan that counts them.
"""

from __future__ import annotations

import numpy as np
import torch

from epcli.core.schema import AUTO_SITE_CHOICES, MOTIF_SITE_SETS

#: Relative-score levels (fraction of the way from a motif's lowest to its highest possible
#: score) at which hits are counted. 0.95 is about a consensus match, each mismatch of a
#: typical 10-15 bp matrix costs about 0.05-0.1. Site sets before ``levels+cores`` count
#: these and blend them into one log-odds view per matrix.
LEVELS: tuple[float, ...] = (0.7, 0.8, 0.875, 0.95)

#: Levels of the ``levels+cores`` set, each its own view. A scanner that calls a site where
#: the score passes a threshold (FIMO, HOMER) counts at one level per matrix, which a blend
#: of levels describes poorly: on a rule whose sites are PWM score hits, a planted TF's site
#: count correlated 0.65 on average with the blend of :data:`LEVELS`, 0.82 with the best of
#: these six levels and 0.87 with the best of a 0.025 grid (``benchmarks/level_views.py``,
#: docs/benchmarks.md).
FINE_LEVELS: tuple[float, ...] = (0.7, 0.75, 0.8, 0.85, 0.9, 0.95)

#: Hit rates of the ``rates+cores`` set, each its own view: expected sites per position (best
#: of both strands) in sequence drawn from the motif set's background. A scanner such as FIMO
#: calls a site at a p-value, which is a rate, not a fraction of a matrix's score range: the
#: same relative level is a strict threshold for a long, informative matrix and a loose one
#: for a short, degenerate one. Each matrix's threshold for each rate comes from its exact
#: score distribution (:func:`rate_levels`). On the PWM-site rule it counted planted sites
#: better (mean correlation 0.87 against 0.82 for the best of :data:`FINE_LEVELS`) and
#: scored the held-out block higher (0.592 against 0.575), but the unseen cells no better
#: (zero-shot 0.517 against 0.520, 64-shot 0.539 against 0.548), so ``auto`` does not try
#: it; it is a set to choose (docs/benchmarks.md).
RATES: tuple[float, ...] = (3e-3, 1e-3, 3e-4, 1e-4, 3e-5)
#: Resolution (bits) of the score distribution behind :func:`rate_levels`.
SCORE_STEP = 0.01


#: Mismatch allowances of the matrix's whole IUPAC consensus (a second site model beside
#: the log-odds levels, as consensus scanners such as HOMER's count sites).
CONS_MM: tuple[int, ...] = (0, 1, 2)

#: A consensus site model: (name, core width or None for the whole consensus, mismatch
#: allowances at which its matches are counted).
SiteModel = tuple[str, "int | None", tuple[int, ...]]

#: The site model sets a motif model can count (``ModelConfig.motif_sites``). ``consensus``:
#: the matrix's whole IUPAC consensus (Cavener's rules) at 0, 1 and 2 mismatches (the only
#: set of models trained before core counts existed). ``consensus+core``: also the consensus
#: of its most informative 8 positions (0 and 1 mismatches) and 6 positions (0),
#: :meth:`epcli.motifs.pwm.Motif.iupac`, for sites written as a short core such as TEAD's
#: CATTCC: on the development rule it raised zero-shot AUPR by 0.05 and 64-shot by 0.06, on
#: the JASPAR rule it cost 0.01 and 0.02 (docs/benchmarks.md). ``consensus+cores`` (what a
#: model built without training counts): also its 5 most informative positions (exact),
#: for five-letter sites such as the CCAAT box: +0.012 zero-shot and +0.013 at 64 shots on
#: the development rule, +-0.001 on the JASPAR rule, for a warm start about a fifth longer.
#: ``levels+cores``: the same consensus models, and one log-odds view per level of
#: :data:`FINE_LEVELS` instead of a blend of :data:`LEVELS`. On a rule whose sites are PWM
#: score hits it raised zero-shot AUPR from 0.442 to 0.520; on the consensus rules it moved
#: nothing by more than 0.005, but on the bundled example (468 windows) an unseen cell's
#: adapted AUPR fell from 0.521 to 0.467. So training chooses between the two by default
#: (``auto``: :func:`epcli.train.motif_setup.prepare_motif_model`; docs/benchmarks.md).
SITE_SETS: dict[str, tuple[SiteModel, ...]] = {
    "consensus": (("consensus", None, CONS_MM),),
    "consensus+core": (
        ("consensus", None, CONS_MM),
        ("core 8 bp", 8, (0, 1)),
        ("core 6 bp", 6, (0,)),
    ),
    "consensus+cores": (
        ("consensus", None, CONS_MM),
        ("core 8 bp", 8, (0, 1)),
        ("core 6 bp", 6, (0,)),
        ("core 5 bp", 5, (0,)),
    ),
}
SITE_SETS["levels+cores"] = SITE_SETS["consensus+cores"]
SITE_SETS["rates+cores"] = SITE_SETS["consensus+cores"]

#: The log-odds levels of each site set, and whether each level is a view of its own (else
#: one view blends them with learned per-matrix weights).
LEVEL_SETS: dict[str, tuple[tuple[float, ...], bool]] = {
    "rates+cores": (RATES, True),
    "levels+cores": (FINE_LEVELS, True),
    "consensus+cores": (LEVELS, False),
    "consensus+core": (LEVELS, False),
    "consensus": (LEVELS, False),
}
assert set(SITE_SETS) == set(MOTIF_SITE_SETS) == set(LEVEL_SETS)
#: The sets whose levels are hit rates (a threshold per matrix, :func:`rate_levels`) rather
#: than relative levels shared by every matrix.
RATE_SETS = frozenset({"rates+cores"})
#: The site model set of a model built without training (training chooses by default).
DEFAULT_SITES = AUTO_SITE_CHOICES[0]


class SiteLayout:
    """Shapes that follow from a site model set.

    Parameters
    ----------
    name : str
        A key of :data:`SITE_SETS`.

    Attributes
    ----------
    models : tuple of SiteModel
    levels : tuple of float
        Relative log-odds levels at which hits are counted (:data:`LEVEL_SETS`), or, for a
        set of :data:`RATE_SETS`, hit rates (each matrix's own relative levels,
        :func:`rate_levels`).
    rate_levels : bool
        The levels are hit rates.
    level_views : bool
        Each level is a view of its own; otherwise one view blends them.
    n_counts : int
        Count channels (one per model and allowance).
    n_stats : int
        Statistics per motif and ring: hits at each of :attr:`levels`, the count channels,
        then the best relative log-odds score.
    n_level_views : int
        Log-odds views per motif: ``len(levels)`` or 1.
    views : int
        Activity features per motif: the log-odds view(s), then one per count channel.
    n_scans : int
        Scans of each matrix: its log-odds matrix (scan 0), then each site model's consensus.
    view_scan : tuple of int, length ``views``
        The scan each view is computed from.
    """

    def __init__(self, name: str) -> None:
        if name not in SITE_SETS:
            raise ValueError(f"unknown site model set {name!r}; choose one of {list(SITE_SETS)}")
        self.name = name
        self.models = SITE_SETS[name]
        self.levels, self.level_views = LEVEL_SETS[name]
        self.rate_levels = name in RATE_SETS
        self.n_counts = sum(len(mm) for _, _, mm in self.models)
        self.n_stats = len(self.levels) + self.n_counts + 1
        self.n_level_views = len(self.levels) if self.level_views else 1
        self.views = self.n_level_views + self.n_counts
        self.n_scans = 1 + len(self.models)
        self.view_scan = (0,) * self.n_level_views + tuple(
            1 + s for s, (_, _, mm) in enumerate(self.models) for _ in mm
        )


#: The default layout, and its shapes (for readers and tests of default models).
DEFAULT_LAYOUT = SiteLayout(DEFAULT_SITES)
SITE_MODELS = DEFAULT_LAYOUT.models
DEFAULT_LEVELS = DEFAULT_LAYOUT.levels
N_LEVEL_VIEWS = DEFAULT_LAYOUT.n_level_views
N_COUNTS = DEFAULT_LAYOUT.n_counts
N_STATS = DEFAULT_LAYOUT.n_stats
VIEWS = DEFAULT_LAYOUT.views
N_SCANS = DEFAULT_LAYOUT.n_scans
VIEW_SCAN = DEFAULT_LAYOUT.view_scan


def scan_plan(
    used: torch.Tensor, n_motifs: int, layout: SiteLayout = DEFAULT_LAYOUT
) -> torch.Tensor:
    """Which scans each matrix needs, from the activity features that a model uses.

    Parameters
    ----------
    used : torch.Tensor, shape (M * views + F,) or (M * views,), bool
        Features with a non-zero weight (feature order of
        :class:`~epcli.model.motif_activity.MotifActivity`).
    n_motifs : int
        M.
    layout : SiteLayout
        The model's site models.

    Returns
    -------
    torch.Tensor, shape (M, n_scans), bool
        Column 0: the log-odds scan; column 1 + s: site model s's consensus scan
        (``layout.view_scan``). A scan no used view reads is skipped.
    """
    views = used[: n_motifs * layout.views].reshape(n_motifs, layout.views)
    plan = torch.zeros(n_motifs, layout.n_scans, dtype=torch.bool, device=used.device)
    for v, s in enumerate(layout.view_scan):
        plan[:, s] |= views[:, v]
    return plan


def site_matrices(ms, layout: SiteLayout = DEFAULT_LAYOUT) -> tuple[np.ndarray, np.ndarray]:
    """The consensus matrices of every site model of a layout for a motif set.

    Parameters
    ----------
    ms : epcli.motifs.MotifSet
    layout : SiteLayout

    Returns
    -------
    allowed, lengths : np.ndarray, shapes (S, M, 4, K) float32 and (S, M) int64
        :meth:`~epcli.motifs.MotifSet.consensus_tensor` of each site model.
    """
    parts = [ms.consensus_tensor(core) for _, core, _ in layout.models]
    return np.stack([a for a, _ in parts]), np.stack([n for _, n in parts])


def rate_levels(
    weights: np.ndarray,
    lengths: np.ndarray,
    background: tuple[float, ...] | np.ndarray,
    rates: tuple[float, ...] = RATES,
) -> np.ndarray:
    """Each matrix's relative log-odds level at which hits occur at each rate.

    The exact distribution of a matrix's score under the background (a sum of independent
    positions, computed on a grid of :data:`SCORE_STEP` bits, as FIMO and MOODS compute
    p-values) gives the lowest score that occurs with a single-strand tail probability of at
    most ``rate / 2`` (the scan takes the better of two strands); the level is that score's
    fraction of the way from the matrix's lowest to its highest possible score, the units the
    scan compares (``rel >= level``).

    Parameters
    ----------
    weights : np.ndarray, shape (M, 4, K)
        Log-odds (bits) of A, C, G, T per position; positions past a motif's end are ignored.
    lengths : np.ndarray, shape (M,)
    background : sequence of 4 floats
        Base probabilities of A, C, G, T.
    rates : tuple of float
        Expected hits per position, each in (0, 1).

    Returns
    -------
    np.ndarray, shape (M, len(rates)), float32
        Relative levels in [0, 1], half a grid step below the score (1 where even the best
        score is more frequent than the rate, or the matrix is empty or flat).
    """
    w = np.asarray(weights, dtype=np.float64)
    bg = np.asarray(background, dtype=np.float64)
    bg = bg / bg.sum()
    out = np.ones((w.shape[0], len(rates)), np.float64)
    for m in range(w.shape[0]):
        wm = w[m, :, : int(lengths[m])]
        span = float((wm.max(0) - wm.min(0)).sum())
        if wm.shape[1] == 0 or span <= 0:
            continue
        q = np.rint((wm - wm.min(0)) / SCORE_STEP).astype(np.int64)  # (4, k) >= 0
        dist = np.zeros(int(q.max(0).sum()) + 1)
        dist[0] = 1.0
        for j in range(q.shape[1]):
            new = np.zeros_like(dist)
            for b in range(4):
                s = q[b, j]
                new[s:] += bg[b] * dist[: dist.size - s]
            dist = new
        tail = np.cumsum(dist[::-1])[::-1]  # tail[i] = P(score >= lowest + i * step)
        for r, rate in enumerate(rates):
            # the lowest score that occurs with a tail of at most rate / 2, half a grid step
            # lower so that rounding never moves a score that occurs below the level
            ok = np.flatnonzero((tail <= rate / 2.0) & (dist > 0))
            if ok.size:
                out[m, r] = min(1.0, max(0.0, (ok[0] - 0.5) * SCORE_STEP / span))
    return out.astype(np.float32)
