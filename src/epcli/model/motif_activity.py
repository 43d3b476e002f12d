"""Motif activity of the motif-grounded model: per-window features from the scan statistics
of :class:`~epcli.model.motif_scan.MotifScanner` (learned positional pooling over the rings,
learned per-motif hit thresholds, one feature per view), standardised over training windows.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from epcli.model.motif_sites import DEFAULT_LAYOUT, SiteLayout


class MotifActivity(nn.Module):
    """Per-window motif activity z from scan statistics (one per anchor side).

    Each of the M motifs gives :attr:`views` features (its log-odds view or views, then one
    per count channel of the layout), each free filter one. With ``layout.level_views``
    log-odds view l is ``log1p(sum_b p_b counts[m, b, l])``, the hits at level l, with
    positional weights ``p = softplus(pos)`` (B,). Otherwise one view blends the levels:
    ``log1p(sum_b p_b sum_l q_(m,l) counts[m, b, l] / c_(m,l))`` with per-motif level
    mixtures ``q = softmax(thr)`` and ``c`` the mean whole-window count of each motif at
    each level over the training windows (so every level weighs alike before ``q`` is
    learned); free filters always blend. Consensus view t is
    ``log1p(sum_b p_b cons_counts[m, b, t])``. Every feature is then standardised over the
    training windows. Feature order: motif 0's views, motif 1's views, ..., then the free
    filters.

    Parameters
    ----------
    n_motifs, n_free : int
        M matrices and F free filters.
    n_bins : int
        B rings.
    layout : SiteLayout
        The scanner's site models (how many consensus count channels, hence views).
    """

    def __init__(
        self, n_motifs: int, n_free: int, n_bins: int, layout: SiteLayout = DEFAULT_LAYOUT
    ) -> None:
        super().__init__()
        self.n_motifs, self.n_free = int(n_motifs), int(n_free)
        self.views, self.n_counts = layout.views, layout.n_counts
        self.n_levels, self.level_views = len(layout.levels), layout.level_views
        n_src = self.n_motifs + self.n_free
        self.pos = nn.Parameter(torch.zeros(n_bins))
        self.thr = nn.Parameter(torch.zeros(n_src, self.n_levels))
        self.register_buffer("level_scale", torch.ones(n_src, self.n_levels))
        self.register_buffer("mean", torch.zeros(self.n_out))
        self.register_buffer("sd", torch.ones(self.n_out))

    @property
    def n_out(self) -> int:
        """Features: M * views + F."""
        return self.n_motifs * self.views + self.n_free

    def raw(self, stats: torch.Tensor) -> torch.Tensor:
        """(N, M+F, N_STATS, B) -> unstandardised activity (N, M * views + F)."""
        p = F.softplus(self.pos) / math.log(2.0)  # 1 at initialisation
        q = torch.softmax(self.thr, dim=-1) / self.level_scale
        # positional pooling first, as one matrix-vector product over the contiguous ring
        # axis (no (N, M, N_STATS, B) temporary in the forward or the backward pass)
        pooled = stats @ p  # (N, M+F, N_STATS)
        nl, m = self.n_levels, self.n_motifs
        pwm = torch.log1p((pooled[..., :nl] * q).sum(-1).clamp(min=0.0))  # (N, M+F)
        if self.level_views:
            lo = torch.log1p(pooled[:, :m, :nl].clamp(min=0.0))  # (N, M, levels)
        else:
            lo = pwm[:, :m, None]
        cons = torch.log1p(pooled[:, :m, nl : nl + self.n_counts].clamp(min=0.0))
        views = torch.cat([lo, cons], dim=-1).flatten(1)
        return torch.cat([views, pwm[:, m:]], dim=1)

    def count_view(self, counts: torch.Tensor) -> torch.Tensor:
        """One count view, unstandardised, from a matrix's hits per ring: a log-odds level
        view (a layout with one view per level) or a consensus view, (N, B) -> (N,), as
        :meth:`raw` computes it."""
        p = F.softplus(self.pos) / math.log(2.0)
        return torch.log1p((counts @ p).clamp(min=0.0))

    def forward(self, stats: torch.Tensor) -> torch.Tensor:
        """(N, M+F, N_STATS, B) -> standardised activity z (N, M * views + F)."""
        return (self.raw(stats) - self.mean) / self.sd

    def set_normalization(self, stats: torch.Tensor) -> None:
        """Level scales, mean and SD from the statistics (N, M+F, N_STATS, B) of training
        windows."""
        with torch.no_grad():
            counts = stats[:, :, : self.n_levels].sum(-1).mean(0)  # (M+F, levels)
            self.level_scale.copy_(counts.clamp(min=0.05))
            raw = self.raw(stats)
            self.mean.copy_(raw.mean(0))
            sd = raw.std(0) if raw.shape[0] > 1 else torch.ones_like(self.sd)
            # a feature constant over the training windows (a consensus no training window
            # holds) cannot be learnt; unit scale keeps it near 0 on new windows rather than
            # blowing a single new site up to thousands of SDs
            self.sd.copy_(torch.where(sd < 1e-3, torch.ones_like(sd), sd))
