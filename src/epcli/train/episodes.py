"""Episodes (a cell, a stratified support set, a disjoint query) and the windows of a step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from epcli.core.arrays import PairData, log_distance
from epcli.core.sampling import stratified_pick
from epcli.model.encoder import reverse_complement
from epcli.train.config import TrainConfig


@dataclass
class Episode:
    """One episode: a cell, its support rows and its query rows (indices into PairData)."""

    cell: int
    support: np.ndarray
    query: np.ndarray


class EpisodeSampler:
    """Draws episodes from the training rows.

    Parameters
    ----------
    label, cell_idx : np.ndarray, shape (n_pairs,)
    rows : np.ndarray
        Training rows (labeled).
    support_size, query_size : int
    """

    def __init__(
        self,
        label: np.ndarray,
        cell_idx: np.ndarray,
        rows: np.ndarray,
        support_size: int,
        query_size: int,
    ) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        lab = np.asarray(label)[rows]
        cells = np.asarray(cell_idx)[rows]
        self.cells = np.unique(cells)
        self.rows = {int(c): rows[cells == c] for c in self.cells}
        self.pos = {int(c): rows[(cells == c) & (lab == 1)] for c in self.cells}
        self.neg = {int(c): rows[(cells == c) & (lab == 0)] for c in self.cells}
        self.k = int(support_size)
        self.q = int(query_size)

    def draw_cells(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` cells, without repetition while cells last."""
        m = self.cells.size
        if n <= m:
            return rng.choice(self.cells, size=n, replace=False)
        return np.concatenate([rng.permutation(self.cells), rng.choice(self.cells, size=n - m)])

    def episode(self, rng: np.random.Generator, cell: int) -> Episode:
        """A stratified support set and a disjoint random query batch of ``cell``."""
        c = int(cell)
        sp, sn = stratified_pick(rng, self.pos[c], self.neg[c], self.k)
        support = np.concatenate([sp, sn])
        allr = self.rows[c]
        cand = rng.choice(allr, size=min(self.q + support.size, allr.size), replace=False)
        query = cand[~np.isin(cand, support)][: self.q]
        return Episode(cell=c, support=support, query=query)

    def sample(self, rng: np.random.Generator, n_episodes: int) -> list[Episode]:
        """``n_episodes`` episodes of distinct cells (while cells last)."""
        return [self.episode(rng, c) for c in self.draw_cells(rng, n_episodes)]


def batch_codes(
    data: PairData, rows: np.ndarray, rng: np.random.Generator, rc_aug: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct anchor windows of a batch with random reverse complement, and log distance.

    Each pair is flipped (both windows) with probability 1/2. Windows are de-duplicated over
    (anchor, orientation), so an anchor used by several pairs of the step is encoded once.

    Returns
    -------
    enh : np.ndarray, shape (Ue, Le), uint8
    enh_inv : np.ndarray, shape (B,), int64
        Row of ``enh`` for each pair.
    pro : np.ndarray, shape (Up, Lp), uint8
    pro_inv : np.ndarray, shape (B,), int64
    log_dist : np.ndarray, shape (B,), float32
    """
    flip = (rng.random(rows.size) < 0.5) if rc_aug else np.zeros(rows.size, bool)
    out = []
    for seqs, idx in ((data.enh_seqs, data.enh_idx), (data.pro_seqs, data.pro_idx)):
        key = np.asarray(idx)[rows] * 2 + flip
        uniq, inv = np.unique(key, return_inverse=True)
        codes = seqs[uniq // 2]
        rc = (uniq % 2).astype(bool)
        if rc.any():
            codes[rc] = reverse_complement(codes[rc])
        out += [codes, inv.reshape(-1).astype(np.int64)]
    return out[0], out[1], out[2], out[3], log_distance(np.asarray(data.distance)[rows])


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one epoch on one rank (numpy and torch), from the run's seed."""
    return int(np.random.SeedSequence([seed, epoch, rank, 11]).generate_state(1)[0])


@dataclass
class StepRows:
    """The pairs of one optimizer step.

    Attributes
    ----------
    rows : np.ndarray, shape (B,), int64
        Rows of the PairData (episodes' support then query, episode after episode).
    episode : np.ndarray, shape (B,), int64
        Episode of each row (all 0 without episodes).
    is_support : np.ndarray, shape (B,), bool
    n_episodes : int
    """

    rows: np.ndarray
    episode: np.ndarray
    is_support: np.ndarray
    n_episodes: int


def sample_step(
    sampler: EpisodeSampler,
    train_rows: np.ndarray,
    rng: np.random.Generator,
    cfg: TrainConfig,
    episodic: bool,
) -> StepRows:
    """``cells_per_step`` episodes, or (without prototypes) a plain random batch."""
    if episodic:
        eps = sampler.sample(rng, cfg.cells_per_step)
        rows = np.concatenate([np.concatenate([e.support, e.query]) for e in eps])
        ep_id = np.concatenate(
            [np.full(e.support.size + e.query.size, i) for i, e in enumerate(eps)]
        )
        is_sup = np.concatenate(
            [np.r_[np.ones(e.support.size, bool), np.zeros(e.query.size, bool)] for e in eps]
        )
        return StepRows(rows, ep_id.astype(np.int64), is_sup, len(eps))
    rows = rng.choice(
        train_rows, size=min(cfg.cells_per_step * cfg.query_size, train_rows.size), replace=False
    )
    return StepRows(rows, np.zeros(rows.size, np.int64), np.zeros(rows.size, bool), 1)
