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

#: The log-odds levels of each site set, and whether each level is a view of its own (else
#: one view blends them with learned per-matrix weights).
LEVEL_SETS: dict[str, tuple[tuple[float, ...], bool]] = {
    "levels+cores": (FINE_LEVELS, True),
    "consensus+cores": (LEVELS, False),
    "consensus+core": (LEVELS, False),
    "consensus": (LEVELS, False),
}
assert set(SITE_SETS) == set(MOTIF_SITE_SETS) == set(LEVEL_SETS)
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
        Relative log-odds levels at which hits are counted (:data:`LEVEL_SETS`).
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
