"""The PWM scan of the motif-grounded model: position weight matrices (log-odds, both strands,
max over strands) and free filters -> per-ring hit statistics of each window, memoised per
distinct window; and the motif activity (learned positional pooling and hit thresholds).

See :mod:`epcli.model.motif` for the model built on it, and
:mod:`epcli.model.motif_kernels` for the position-level kernels it is built of.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from epcli.model.motif_kernels import (
    GEMM_MOTIFS,
    RES,
    canonical_orientation,
    hit_counts,
    kmer_columns,
    one_hot,
    ring_bounds,
    ring_matrix,
    ring_reduce,
    scan_input,
    strand_max,
    strand_max_pool,
    use_gemm,
)
from epcli.model.motif_sites import DEFAULT_SITES, SiteLayout, rate_levels
from epcli.motifs.pwm import DEFAULT_BACKGROUND

#: Softness (relative-score units) of the gradient of a hit when the PWMs are fine-tuned.
BETA = 0.02


#: Range of the levels of the free filters (their scores are in learned units): as many
#: levels as the layout's log-odds levels, evenly spaced over it.
FREE_LEVEL_RANGE: tuple[float, float] = (0.0, 3.0)


#: Width of a motif length bucket: motifs are scanned in groups of similar length, each
#: padded to its group's longest, instead of all padded to the longest motif.
_BUCKET = 4
#: Memo key prefix of a window's full scan (every scan of every motif); a planned scan's key
#: starts with a digest of its plan.
FULL_PLAN = b"\0" * 8


class MotifScanner(nn.Module):
    """PWM layer plus free filters: base codes -> per-ring motif hit statistics.

    Parameters
    ----------
    n_motifs : int
        M, number of position weight matrices.
    width : int
        K, padded length of the matrices (the longest motif).
    n_bins : int
        B, rings of distance from the window centre.
    n_free : int
        F, free filters learned from scratch.
    free_len : int
        Length of each free filter (bp).
    finetune : bool
        The PWM weights are trained; otherwise they are frozen and scans are memoised.
    cache_bytes : int
        Bound of the memo of frozen scans (LRU over distinct windows).
    sites : str
        Site model set (a key of :data:`SITE_SETS`).

    Attributes
    ----------
    weight : torch.nn.Parameter, shape (M, 4, K)
        Log-odds (bits) of A, C, G, T per position; positions past a motif's end are 0.
    lengths : torch.Tensor, shape (M,), int64 (buffer)
    level_rel : torch.Tensor, shape (M, levels) (buffer; only for a set with one view per level)
        Each matrix's relative level of each view: for a set of hit-rate levels the level of
        each rate (:func:`rate_levels`, set with the matrices), otherwise the set's shared
        levels; the warm start may refine them (:mod:`epcli.model.motif_levels`). Saved with
        the weights, so a fine-tuned layer keeps its thresholds.
    background : torch.Tensor, shape (M, 4) (buffer; the same sets)
        The background (A, C, G, T) each matrix's log-odds are taken against: the motif
        set's, unless the warm start moved the matrix to another
        (:func:`~epcli.model.motif_levels.rebase`).
    """

    def __init__(
        self,
        n_motifs: int,
        width: int,
        n_bins: int,
        n_free: int,
        free_len: int,
        finetune: bool,
        cache_bytes: int,
        sites: str = DEFAULT_SITES,
    ) -> None:
        super().__init__()
        self.layout = SiteLayout(sites)
        self.n_motifs, self.width, self.n_bins = int(n_motifs), int(width), int(n_bins)
        self.weight = nn.Parameter(torch.zeros(self.n_motifs, 4, self.width))
        self.weight.requires_grad_(bool(finetune))
        self.register_buffer("lengths", torch.full((self.n_motifs,), self.width, dtype=torch.long))
        # IUPAC consensus of each site model and matrix as allowed bases (0/1) and its
        # length (0: none)
        n_sites = len(self.layout.models)
        self.register_buffer("cons", torch.zeros(n_sites, self.n_motifs, 4, self.width))
        self.register_buffer("cons_len", torch.zeros(n_sites, self.n_motifs, dtype=torch.long))
        # which of them the warm start edited (:mod:`epcli.model.motif_consensus`)
        self.register_buffer("cons_edited", torch.zeros(n_sites, self.n_motifs, dtype=torch.bool))
        self._register_load_state_dict_pre_hook(self._unedited)
        if self.layout.level_views:  # each matrix's own levels (refined by the warm start)
            start = torch.ones(len(self.layout.levels))
            if not self.layout.rate_levels:
                start = torch.tensor(self.layout.levels, dtype=torch.float32)
            self.register_buffer("level_rel", start.repeat(self.n_motifs, 1))
            bg = torch.tensor(DEFAULT_BACKGROUND, dtype=torch.float32)
            self.register_buffer("background", bg.repeat(self.n_motifs, 1))
            self._register_load_state_dict_pre_hook(self._shared_levels)
        self.free = nn.Parameter(torch.randn(int(n_free), 4, int(free_len)) * 0.5)
        self.cache_bytes = int(cache_bytes)
        self._memo: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self._memo_bytes = 0
        self.scans = 0  # windows scanned (not served from the memo), for tests and logs
        self.register_load_state_dict_post_hook(lambda *_: self.clear_cache())

    # ---------------------------------------------------------------- set-up
    def set_matrices(
        self,
        weights: np.ndarray,
        lengths: np.ndarray,
        consensus: tuple[np.ndarray, np.ndarray] | None = None,
        background: tuple[float, ...] = DEFAULT_BACKGROUND,
    ) -> None:
        """Load log-odds matrices (M, 4, K) and motif lengths (M,), and optionally the
        consensus matrices of the site models (:func:`site_matrices`: allowed bases
        (S, M, 4, K), lengths (S, M)); a layout of hit-rate levels also gets each matrix's
        levels under ``background`` (the matrices' own, A C G T); clears the memo."""
        with torch.no_grad():
            self.weight.copy_(torch.as_tensor(weights, dtype=torch.float32))
            self.lengths.copy_(torch.as_tensor(lengths, dtype=torch.long))
            if consensus is not None:
                self.cons.copy_(torch.as_tensor(consensus[0], dtype=torch.float32))
                self.cons_len.copy_(torch.as_tensor(consensus[1], dtype=torch.long))
            if self.layout.level_views:
                self.background.copy_(torch.as_tensor(background).expand_as(self.background))
        self.set_rate_levels(background)
        self.clear_cache()

    def set_rate_levels(self, background: tuple[float, ...] = DEFAULT_BACKGROUND) -> None:
        """Each matrix's levels for the layout's hit rates, from the current weights and
        lengths under ``background`` (:func:`rate_levels`); nothing for a layout of shared
        relative levels."""
        if not self.layout.rate_levels:
            return
        w = self.weight.detach().cpu().numpy()
        lv = rate_levels(w, self.lengths.cpu().numpy(), background, self.layout.levels)
        with torch.no_grad():
            self.level_rel.copy_(torch.as_tensor(lv))

    def _shared_levels(self, state_dict: dict, prefix: str, *_args) -> None:
        """Weights saved before each matrix held its own levels and background: the set's
        shared levels, the default background."""
        for key in ("background",) if self.layout.rate_levels else ("level_rel", "background"):
            if prefix + key not in state_dict:
                state_dict[prefix + key] = getattr(self, key).detach().clone()

    def _unedited(self, state_dict: dict, prefix: str, *_args) -> None:
        """Weights saved before consensus matrices could be edited: none was."""
        if prefix + "cons_edited" not in state_dict:
            state_dict[prefix + "cons_edited"] = torch.zeros_like(self.cons_edited)

    def clear_cache(self) -> None:
        """Forget every memoised scan."""
        self._memo.clear()
        self._memo_bytes = 0

    def train(self, mode: bool = True) -> MotifScanner:
        """Switch mode; a trainable PWM layer's memo is cleared (its weights will change)."""
        if self.weight.requires_grad:
            self.clear_cache()
        return super().train(mode)

    @property
    def n_free(self) -> int:
        """F, free filters."""
        return int(self.free.shape[0])

    @property
    def memo_bytes(self) -> int:
        """Bytes held by the memo of scans."""
        return self._memo_bytes

    def _memo_on(self) -> bool:
        return self.cache_bytes > 0 and not (self.weight.requires_grad and self.training)

    # ---------------------------------------------------------------- scans
    def as_plan(self, subset: torch.Tensor | None) -> torch.Tensor | None:
        """A scan plan (M, n_scans) bool (:func:`~epcli.model.motif_sites.scan_plan`) from a
        plan, from motif indices (every scan of those motifs), or None (every scan of every
        motif)."""
        if subset is None or (subset.dtype == torch.bool and subset.dim() == 2):
            return subset
        plan = torch.zeros(self.n_motifs, self.layout.n_scans, dtype=torch.bool)
        plan[subset.cpu()] = True
        return plan

    def _buckets(
        self, chosen: torch.Tensor | None = None, lengths: torch.Tensor | None = None
    ) -> list[tuple[torch.Tensor, int]]:
        """Motif indices grouped by length (each padded to its group's longest); motifs of
        length 0 (``lengths`` given: consensus lengths) and, with ``chosen`` ((M,) bool),
        those not chosen are left out."""
        lengths = (self.lengths if lengths is None else lengths).clamp(0, self.width)
        keep = lengths > 0
        if chosen is not None:
            keep = keep & chosen.to(keep.device)
        out = []
        for lo in range(0, self.width, _BUCKET):
            sel = (keep & (lengths > lo) & (lengths <= lo + _BUCKET)).nonzero().view(-1)
            if sel.numel():
                out.append((sel, min(lo + _BUCKET, self.width)))
        return out

    def pwm_stats(self, x: torch.Tensor, subset: torch.Tensor | None = None) -> torch.Tensor:
        """Per-ring hit statistics of the PWMs.

        Parameters
        ----------
        x : torch.Tensor, shape (N, 4, L), one-hot
        subset : torch.Tensor, optional
            Scan only these motifs (int64 indices) or only these scans (a plan,
            :meth:`as_plan`); the statistics of a scan left out are 0.

        Returns
        -------
        torch.Tensor, shape (N, M, n_stats, B)
            Hits (:func:`hit_counts`: runs of :data:`RES` start positions whose best site
            reaches the level) at each of the layout's levels; consensus hits (runs of RES
            positions whose best site has at most that many mismatches) of each site model
            at each of its allowances (the scanner's ``layout``); then the best relative score
            ``rel = (s - s_min) / (s_max - s_min)`` in the ring.
        """
        n, _, length = x.shape
        out = x.new_zeros(n, self.n_motifs, self.layout.n_stats, self.n_bins)
        with torch.autocast(x.device.type, enabled=False):  # thresholds need full precision
            self._pwm_stats_into(out, x.float(), self.as_plan(subset))
        return out

    def _pwm_stats_into(self, out: torch.Tensor, x: torch.Tensor, plan) -> None:
        length = x.shape[-1]
        shared = self.layout.levels
        buckets = self._buckets(None if plan is None else plan[:, 0])
        site_buckets = [
            self._buckets(None if plan is None else plan[:, 1 + s], n)
            for s, n in enumerate(self.cons_len)
        ]
        cols = None
        n_scanned = sum(int(sel.numel()) for sel, _ in buckets)
        if use_gemm(x) and n_scanned >= GEMM_MOTIFS:
            widest = max(k for _, k in buckets + sum(site_buckets, []))
            cols = kmer_columns(x, min(widest, length))
        for sel, k in buckets:
            if length < k:
                continue
            rel = self._rel(x, sel, k, cols)
            ring = (rel.shape[-1], k, length, self.n_bins, RES)
            levels = self.level_rel[sel] if self.layout.level_views else shared
            out[:, sel, : len(shared)] = self._ring_hits(rel, levels, k, length)
            out[:, sel, -1] = ring_reduce(rel, ring_bounds(*ring), "max")
        with torch.no_grad():  # consensus matches are counts of fixed matrices
            first = len(shared)
            for site, (_, _, allow) in enumerate(self.layout.models):
                for sel, k in site_buckets[site]:
                    if length < k:
                        continue
                    out[:, sel, first : first + len(allow)] = self._cons_hits(
                        x, self.cons[site, sel, :, :k], self.cons_len[site, sel], allow, cols
                    )
                first += len(allow)

    def _cons_hits(
        self, x: torch.Tensor, allowed: torch.Tensor, lens: torch.Tensor, allow, cols=None
    ) -> torch.Tensor:
        """Consensus hits per ring: one-hot windows (N, 4, L), consensus matrices (C, 4, k)
        (allowed bases, padded to their length bucket's ``k``) of lengths (C,) -> hits at
        each mismatch allowance of ``allow``, (N, C, len(allow), B): runs of :data:`RES`
        positions whose best site on either strand has at most that many mismatches."""
        k, length = allowed.shape[-1], x.shape[-1]
        matches = strand_max_pool(x, allowed, RES, cols)
        mism = lens.to(x.dtype)[None, :, None] - matches
        ring = ring_matrix(matches.shape[-1], k, length, self.n_bins, RES).to(x)
        return torch.stack([mism <= t for t in allow], dim=2).to(x.dtype) @ ring

    def consensus_hits(
        self, x: torch.Tensor, allowed: torch.Tensor, allow: tuple[int, ...]
    ) -> torch.Tensor:
        """Hits per ring of any consensus matrices, counted as the scan counts a matrix's
        consensus of that length (its length bucket, strands and runs), without gradients.

        Parameters
        ----------
        x : torch.Tensor, shape (N, 4, L)
            Windows as the scan reads them (:func:`scan_input`).
        allowed : torch.Tensor, shape (C, 4, k), 0/1
            Allowed bases of C consensus matrices of one length k <= ``width``.
        allow : tuple of int
            Mismatch allowances.

        Returns
        -------
        torch.Tensor, shape (N, C, len(allow), B)
        """
        k = int(allowed.shape[-1])
        pad = min((k - 1) // _BUCKET * _BUCKET + _BUCKET, self.width)  # as :meth:`_buckets`
        if x.shape[-1] < pad:
            return x.new_zeros(x.shape[0], allowed.shape[0], len(allow), self.n_bins)
        mats = F.pad(allowed.to(x), (0, pad - k))
        lens = torch.full((allowed.shape[0],), k, dtype=torch.long)
        with torch.no_grad():
            return self._cons_hits(x, mats, lens, allow)

    def _rel(self, x: torch.Tensor, sel: torch.Tensor, k: int, cols) -> torch.Tensor:
        """Relative scores ``(s - s_min) / (s_max - s_min)`` of matrices ``sel`` (padded to
        ``k``), best of both strands and of each run of :data:`RES` positions, (N, C, P)."""
        w = self.weight[sel, :, :k]
        lo = w.amin(1).sum(-1)
        hi = w.amax(1).sum(-1)
        s = strand_max_pool(x, w, RES, cols)
        return (s - lo[None, :, None]) / (hi - lo).clamp(min=1e-6)[None, :, None]

    def _ring_hits(self, rel: torch.Tensor, levels, k: int, length: int) -> torch.Tensor:
        """Hits per ring at each level (:func:`hit_counts`): rel (N, C, P) -> (N, C, levels,
        B), as one product with the 0/1 ring matrix (exact: sums of 0/1)."""
        hits = torch.stack(hit_counts(rel, levels, BETA), dim=2)  # (N, C, levels, P)
        return hits @ ring_matrix(rel.shape[-1], k, length, self.n_bins, RES).to(hits)

    def level_hits(
        self, codes: torch.Tensor, motif: int, levels: torch.Tensor, best: bool = False
    ) -> torch.Tensor:
        """Hits per ring of one matrix at any relative levels, counted as the scan counts
        them (the same length bucket, strands and runs), without gradients: codes (N, L),
        int64, and levels (C,) -> (N, C, B); with ``best`` a last row (N, C + 1, B) holds
        the best relative score per ring (the scan's last statistic)."""
        chosen = torch.zeros(self.n_motifs, dtype=torch.bool)
        chosen[int(motif)] = True
        (sel, k), *_ = self._buckets(chosen) or [(None, 0)]
        x = scan_input(codes)
        if sel is None or x.shape[-1] < k:
            return x.new_zeros(x.shape[0], levels.numel() + int(best), self.n_bins)
        with torch.no_grad():
            rel = self._rel(x, sel, k, None)
            lv = levels.to(rel).reshape(1, -1).expand(sel.numel(), -1)
            hits = self._ring_hits(rel, lv, k, x.shape[-1])[:, 0]
            ring = ring_bounds(rel.shape[-1], k, x.shape[-1], self.n_bins, RES)
            return torch.cat([hits, ring_reduce(rel, ring, "max")[:, :1]], 1) if best else hits

    def free_stats(self, x: torch.Tensor) -> torch.Tensor:
        """Per-ring statistics of the free filters: (N, 4, L) -> (N, F, n_stats, B).

        Soft counts ``sum sigmoid(s - level)`` at as many levels as the layout's log-odds
        levels, evenly spaced over :data:`FREE_LEVEL_RANGE` (the filters learn their own
        scale), zeros in the consensus channels, then the ring's best ``sigmoid(s)``.
        """
        n, _, length = x.shape
        k = self.free.shape[-1]
        if self.free.shape[0] == 0 or length < k:
            return x.new_zeros(n, self.free.shape[0], self.layout.n_stats, self.n_bins)
        s = strand_max(x, self.free)
        bounds = ring_bounds(s.shape[-1], k, length, self.n_bins)
        free_levels = np.linspace(*FREE_LEVEL_RANGE, len(self.layout.levels))
        parts = [ring_reduce(torch.sigmoid(s - float(lv)), bounds, "sum") for lv in free_levels]
        parts += [parts[0].new_zeros(parts[0].shape)] * self.layout.n_counts
        parts.append(ring_reduce(torch.sigmoid(s), bounds, "max"))
        return torch.stack(parts, dim=-2)

    def forward(
        self, codes: torch.Tensor, subset: torch.Tensor | None = None, batch: int = 16
    ) -> torch.Tensor:
        """Scan windows: codes (N, L) -> statistics (N, M + F, n_stats, B).

        Frozen PWM statistics are memoised per distinct window content (and scan plan), so a
        window seen before in this run is not scanned again; the free filters are always
        computed. ``subset`` (motif indices or a scan plan, :meth:`as_plan`) restricts the
        scan; the statistics of the scans left out are 0.
        """
        codes = canonical_orientation(codes)
        x = one_hot(codes).contiguous()  # (N, 4, L); the convolution is 3x slower on a view
        free = self.free_stats(x)
        if not self._memo_on():
            self.scans += int(codes.shape[0])
            return torch.cat([self.pwm_stats(x, subset), free], dim=1)
        plan = self.as_plan(subset)
        rows = None if plan is None else plan.cpu().any(1).nonzero().view(-1)
        host = codes.detach().to("cpu", torch.uint8).numpy()
        full = FULL_PLAN
        sig = full
        if plan is not None:
            sig = hashlib.blake2b(np.packbits(plan.cpu().numpy()).tobytes()).digest()[:8]
        digests = [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in host]
        keys = [sig + d for d in digests]
        found: dict[bytes, torch.Tensor] = {}
        todo: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key in found or key in todo:
                continue
            hit = self._memo.get(key)
            if hit is None and sig != full:  # a full scan of the window serves any plan
                hit = self._memo.get(full + digests[i])
                key = full + digests[i] if hit is not None else key
            if hit is None:
                todo[key] = i
            else:
                found[key] = hit
                self._memo.move_to_end(key)
        items = list(todo.items())
        for a in range(0, len(items), batch):
            part = items[a : a + batch]
            idx = torch.as_tensor([i for _, i in part], device=codes.device)
            with torch.no_grad():
                stats = self.pwm_stats(x.index_select(0, idx), plan)
            self.scans += len(part)
            for (key, _), st in zip(part, stats, strict=True):
                found[key] = st.detach().to("cpu")
                # a planned scan is stored as its motifs' rows only (the others are 0): a
                # trained model uses tens of the hundreds of motifs, so the memo stays small
                kept = found[key] if rows is None else found[key][rows]
                self._store(key, kept.contiguous())
        pwm = torch.stack(
            [
                self._full(found[k] if k in found else found[full + d], rows)
                for k, d in zip(keys, digests, strict=True)
            ]
        ).to(x.device)
        return torch.cat([pwm, free], dim=1)

    def remember(self, codes: torch.Tensor, pwm: torch.Tensor) -> None:
        """Memoise full PWM statistics of windows computed elsewhere: codes (N, L) and their
        statistics (N, M, n_stats, B), as a full scan of those windows would store them."""
        if not self._memo_on():
            return
        host = canonical_orientation(codes).detach().to("cpu", torch.uint8).numpy()
        for row, st in zip(host, pwm, strict=True):
            key = FULL_PLAN + hashlib.blake2b(row.tobytes(), digest_size=16).digest()
            if key not in self._memo:
                self._store(key, st.detach().to("cpu").contiguous())

    def _full(self, value: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        """A memoised scan (M, S, B) or its planned rows (|rows|, S, B) -> (M, S, B)."""
        if value.shape[0] == self.n_motifs or rows is None:
            return value
        out = value.new_zeros(self.n_motifs, *value.shape[1:])
        out[rows] = value
        return out

    def _store(self, key: bytes, value: torch.Tensor) -> None:
        v = value
        self._memo[key] = v
        self._memo_bytes += v.numel() * v.element_size()
        while self._memo_bytes > self.cache_bytes and len(self._memo) > 1:
            _, old = self._memo.popitem(last=False)
            self._memo_bytes -= old.numel() * old.element_size()
