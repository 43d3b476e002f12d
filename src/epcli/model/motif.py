"""Motif-grounded PRISM: U_I and R_E built on known TF motifs (the default ``prism``).

P(y=1 | x, c) = sigmoid((U_I(x) - R_E(x; c)) / T), with

* **Scan** (:class:`MotifScanner`): each window is scanned with M position weight matrices
  (log-odds, both strands, max over strands), initialised from a motif set (JASPAR by
  default) and frozen or fine-tuned, beside F free filters learned from scratch. Per motif
  and per ring of distance from the window centre (``motif_bins`` rings), the scan keeps soft
  hit counts at four relative-score levels (:data:`LEVELS`) and the best relative score.
  Frozen scans are memoised per distinct window (bounded LRU), so training and prediction
  scan each unique window once per run.
* **Motif activity** z (per window, M + F values): ``log1p`` of the counts pooled with learned
  positional weights over the rings (shared by all motifs, one set per anchor side) and a
  learned per-motif mixture over the score levels (a soft, learned hit threshold), then
  standardised with statistics of the training windows.
* **U_I** = b + w_E . z_E + w_P . z_P + sum_r (u_r . z_E)(v_r . z_P) + f(log distance): additive
  enhancer- and promoter-motif terms, a low-rank enhancer x promoter motif interaction
  (W = U^T V, cooperating TF pairs), and distance as a term of its own (a quadratic in log
  distance), so the sequence terms cannot silently become distance. An L1 penalty
  (:meth:`MotifPrismModel.regularization`) keeps a handful of motifs carrying a prediction.
* **R_E**: environment features e(x) = g * z_E, with learned non-negative per-motif gates g
  (at most 32, chosen by the warm start), so that a cell prototype (class means of e over a
  support set) is a direction over TFs;
  ``R_E = re_bound * tanh(s * (|e - mu_pos|^2 - |e - mu_neg|^2) / 2)``.
* **T**: a temperature bounded in ``[t_min, t_max]``.

Every score decomposes into named parts (:meth:`MotifPrismModel.contributions`).
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from epcli.model.config import ModelConfig
from epcli.model.encoder import as_codes, one_hot, reverse_complement
from epcli.model.prism import PrototypeMixin, init_prototype_params

#: Relative-score levels (fraction of the way from a motif's lowest to its highest possible
#: score) at which hits are counted. 0.95 is about a consensus match, each mismatch of a
#: typical 10-15 bp matrix costs about 0.05-0.1.
LEVELS: tuple[float, ...] = (0.7, 0.8, 0.875, 0.95)
#: Softness (relative-score units) of the gradient of a hit when the PWMs are fine-tuned.
BETA = 0.02
#: Levels of the free filters (their scores are in learned units).
FREE_LEVELS: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0)
#: Centre of the distance term: log10(1 + d/1000) = 2 at d ~ 100 kb.
LOG_DIST_CENTRE = 2.0
#: Resolution (bp) of hit counting: the best site of each run of RES start positions counts
#: once, so overlapping matches of one motif are one hit (and counting is RES times cheaper).
RES = 8
#: Width of a motif length bucket: motifs are scanned in groups of similar length, each
#: padded to its group's longest, instead of all padded to the longest motif.
_BUCKET = 4


def _ring_bounds(
    n_pos: int, width: int, length: int, n_bins: int, step: int = 1
) -> list[list[tuple[int, int]]]:
    """Positions of each ring of distance from the window centre.

    Scan position i covers sites starting at ``i * step .. i * step + step - 1``, centred at
    ``i * step + (step - 1) / 2 + (width - 1) / 2``; its ring is
    ``floor(|centre - (length - 1) / 2| / (length / 2) * n_bins)`` (clamped to the last ring).
    Each ring is one or two contiguous runs of positions (left and right of the centre).

    Returns
    -------
    list (n_bins) of list of (start, stop)
        Half-open position ranges of each ring (empty list for an empty ring).
    """
    centre = np.arange(n_pos, dtype=np.float64) * step + (step - 1) / 2.0 + (width - 1) / 2.0
    dist = np.abs(centre - (length - 1) / 2.0) / (length / 2.0)
    ring = np.clip(np.floor(dist * n_bins), 0, n_bins - 1).astype(np.int64)
    out: list[list[tuple[int, int]]] = [[] for _ in range(n_bins)]
    start = 0
    for i in range(1, n_pos + 1):
        if i == n_pos or ring[i] != ring[start]:
            out[int(ring[start])].append((start, i))
            start = i
    return out


def _ring_reduce(x: torch.Tensor, bounds: list[list[tuple[int, int]]], how: str) -> torch.Tensor:
    """Sum or max over the positions of each ring: (N, C, P) -> (N, C, B); empty rings give 0."""
    out = []
    for runs in bounds:
        if not runs:
            out.append(x.new_zeros(x.shape[:2]))
            continue
        parts = [x[..., a:b] for a, b in runs]
        if how == "sum":
            out.append(sum(p.sum(-1) for p in parts))
        else:
            red = parts[0].amax(-1)
            for p in parts[1:]:
                red = torch.maximum(red, p.amax(-1))
            out.append(red)
    return torch.stack(out, dim=-1)


def hit_counts(rel: torch.Tensor, levels: tuple[float, ...], beta: float) -> list[torch.Tensor]:
    """Hits at each level: ``rel >= level`` as 0/1 (N, C, P) tensors.

    When ``rel`` requires gradients, each count passes the gradient of
    ``sigmoid((rel - level) / beta)`` (straight-through), so a fine-tuned PWM layer computes
    the same values as a frozen one and still learns.
    """
    out = []
    for lv in levels:
        hard = (rel >= lv).to(rel.dtype)
        if rel.requires_grad:
            soft = torch.sigmoid((rel - lv) / beta)
            hard = hard + soft - soft.detach()
        out.append(hard)
    return out


def _strand_max(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Best score of each position over both strands.

    Parameters
    ----------
    x : torch.Tensor, shape (N, 4, L), one-hot
    w : torch.Tensor, shape (C, 4, k), forward-strand weights

    Returns
    -------
    torch.Tensor, shape (N, C, L - k + 1)
        ``max(w * x, rc(w) * x)`` where rc(w) reverses positions and complements bases
        (A,C,G,T -> T,G,C,A is the reversed channel order).
    """
    both = torch.cat([w, w.flip(1).flip(2)], dim=0)
    s = F.conv1d(x, both)
    c = w.shape[0]
    return torch.maximum(s[:, :c], s[:, c:])


def canonical_orientation(codes: torch.Tensor) -> torch.Tensor:
    """Each window or its reverse complement, whichever is lexicographically smaller.

    Scanning the canonical strand makes every statistic exactly invariant to the window's
    orientation (the scan itself takes the best of both strands, but the :data:`RES` grid and
    the rings are laid out from the window's start).

    Parameters
    ----------
    codes : torch.Tensor, shape (N, L), int64

    Returns
    -------
    torch.Tensor, shape (N, L)
    """
    rc = reverse_complement(codes)
    diff = codes != rc
    first = diff.to(torch.int8).argmax(dim=1)
    take_rc = (
        diff.any(dim=1) & (rc.gather(1, first[:, None]) < codes.gather(1, first[:, None]))[:, 0]
    )
    return torch.where(take_rc[:, None], rc, codes)


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

    Attributes
    ----------
    weight : torch.nn.Parameter, shape (M, 4, K)
        Log-odds (bits) of A, C, G, T per position; positions past a motif's end are 0.
    lengths : torch.Tensor, shape (M,), int64 (buffer)
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
    ) -> None:
        super().__init__()
        self.n_motifs, self.width, self.n_bins = int(n_motifs), int(width), int(n_bins)
        self.weight = nn.Parameter(torch.zeros(self.n_motifs, 4, self.width))
        self.weight.requires_grad_(bool(finetune))
        self.register_buffer("lengths", torch.full((self.n_motifs,), self.width, dtype=torch.long))
        self.free = nn.Parameter(torch.randn(int(n_free), 4, int(free_len)) * 0.5)
        self.cache_bytes = int(cache_bytes)
        self._memo: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self._memo_bytes = 0
        self.scans = 0  # windows scanned (not served from the memo), for tests and logs
        self.register_load_state_dict_post_hook(lambda *_: self.clear_cache())

    # ---------------------------------------------------------------- set-up
    def set_matrices(self, weights: np.ndarray, lengths: np.ndarray) -> None:
        """Load log-odds matrices (M, 4, K) and motif lengths (M,); clears the memo."""
        with torch.no_grad():
            self.weight.copy_(torch.as_tensor(weights, dtype=torch.float32))
            self.lengths.copy_(torch.as_tensor(lengths, dtype=torch.long))
        self.clear_cache()

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
    def n_features(self) -> int:
        """M + F, motifs and free filters."""
        return self.n_motifs + int(self.free.shape[0])

    @property
    def memo_bytes(self) -> int:
        """Bytes held by the memo of scans."""
        return self._memo_bytes

    def _memo_on(self) -> bool:
        return self.cache_bytes > 0 and not (self.weight.requires_grad and self.training)

    # ---------------------------------------------------------------- scans
    def _buckets(self, subset: torch.Tensor | None = None) -> list[tuple[torch.Tensor, int]]:
        """Motif indices grouped by length (each padded to its group's longest)."""
        lengths = self.lengths.clamp(1, self.width)
        keep = torch.ones_like(lengths, dtype=torch.bool)
        if subset is not None:
            keep = torch.zeros_like(keep)
            keep[subset.to(keep.device)] = True
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
        subset : torch.Tensor of int64, optional
            Scan only these motifs (the others' statistics are 0).

        Returns
        -------
        torch.Tensor, shape (N, M, B, len(LEVELS) + 1)
            Hits (:func:`hit_counts`: runs of :data:`RES` start positions whose best site
            reaches the level) at each level, then the best relative score
            ``rel = (s - s_min) / (s_max - s_min)`` in the ring.
        """
        n, _, length = x.shape
        out = x.new_zeros(n, self.n_motifs, self.n_bins, len(LEVELS) + 1)
        with torch.autocast(x.device.type, enabled=False):  # thresholds need full precision
            self._pwm_stats_into(out, x.float(), subset)
        return out

    def _pwm_stats_into(self, out: torch.Tensor, x: torch.Tensor, subset) -> None:
        length = x.shape[-1]
        for sel, k in self._buckets(subset):
            if length < k:
                continue
            w = self.weight[sel, :, :k]
            lo = w.amin(1).sum(-1)
            hi = w.amax(1).sum(-1)
            s = F.max_pool1d(_strand_max(x, w), RES, ceil_mode=True)
            rel = (s - lo[None, :, None]) / (hi - lo).clamp(min=1e-6)[None, :, None]
            bounds = _ring_bounds(s.shape[-1], k, length, self.n_bins, RES)
            parts = [_ring_reduce(h, bounds, "sum") for h in hit_counts(rel, LEVELS, BETA)]
            parts.append(_ring_reduce(rel, bounds, "max"))
            out[:, sel] = torch.stack(parts, dim=-1)

    def free_stats(self, x: torch.Tensor) -> torch.Tensor:
        """Per-ring statistics of the free filters: (N, 4, L) -> (N, F, B, len(LEVELS) + 1).

        Soft counts ``sum sigmoid(s - level)`` at :data:`FREE_LEVELS` (the filters learn their
        own scale), then the ring's best ``sigmoid(s)``.
        """
        n, _, length = x.shape
        k = self.free.shape[-1]
        if self.free.shape[0] == 0 or length < k:
            return x.new_zeros(n, self.free.shape[0], self.n_bins, len(LEVELS) + 1)
        s = _strand_max(x, self.free)
        bounds = _ring_bounds(s.shape[-1], k, length, self.n_bins)
        parts = [_ring_reduce(torch.sigmoid(s - lv), bounds, "sum") for lv in FREE_LEVELS]
        parts.append(_ring_reduce(torch.sigmoid(s), bounds, "max"))
        return torch.stack(parts, dim=-1)

    def forward(
        self, codes: torch.Tensor, subset: torch.Tensor | None = None, batch: int = 16
    ) -> torch.Tensor:
        """Scan windows: codes (N, L) -> statistics (N, M + F, B, len(LEVELS) + 1).

        Frozen PWM statistics are memoised per distinct window content (and motif subset),
        so a window seen before in this run is not scanned again; the free filters are always
        computed. ``subset`` (motif indices) restricts the scan; other motifs get 0.
        """
        codes = canonical_orientation(codes)
        x = one_hot(codes).contiguous()  # (N, 4, L); the convolution is 3x slower on a view
        free = self.free_stats(x)
        if not self._memo_on():
            self.scans += int(codes.shape[0])
            return torch.cat([self.pwm_stats(x, subset), free], dim=1)
        host = codes.detach().to("cpu", torch.uint8).numpy()
        full = b"\0" * 8
        sig = full
        if subset is not None:
            sig = hashlib.blake2b(subset.detach().cpu().numpy().astype(np.int64).tobytes())
            sig = sig.digest()[:8]
        digests = [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in host]
        keys = [sig + d for d in digests]
        found: dict[bytes, torch.Tensor] = {}
        todo: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key in found or key in todo:
                continue
            hit = self._memo.get(key)
            if hit is None and sig != full:  # a full scan of the window serves any subset
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
                stats = self.pwm_stats(x.index_select(0, idx), subset)
            self.scans += len(part)
            for (key, _), st in zip(part, stats, strict=True):
                found[key] = st.detach().to("cpu")
                # a subset scan is stored as its rows only (the others are 0): a trained
                # model uses tens of the hundreds of motifs, so the memo stays small
                kept = found[key] if subset is None else found[key][subset.cpu()]
                self._store(key, kept.contiguous())
        pwm = torch.stack(
            [
                self._full(found[k] if k in found else found[full + d], subset)
                for k, d in zip(keys, digests, strict=True)
            ]
        ).to(x.device)
        return torch.cat([pwm, free], dim=1)

    def _full(self, value: torch.Tensor, subset: torch.Tensor | None) -> torch.Tensor:
        """A memoised scan (M, B, S) or its subset rows (|subset|, B, S) -> (M, B, S)."""
        if value.shape[0] == self.n_motifs or subset is None:
            return value
        out = value.new_zeros(self.n_motifs, *value.shape[1:])
        out[subset.cpu()] = value
        return out

    def _store(self, key: bytes, value: torch.Tensor) -> None:
        v = value
        self._memo[key] = v
        self._memo_bytes += v.numel() * v.element_size()
        while self._memo_bytes > self.cache_bytes and len(self._memo) > 1:
            _, old = self._memo.popitem(last=False)
            self._memo_bytes -= old.numel() * old.element_size()


class MotifActivity(nn.Module):
    """Per-window motif activity z from scan statistics (one per anchor side).

    ``z = (log1p(sum_b p_b sum_t q_(m,t) counts[m, b, t] / c_(m,t)) - mean) / sd`` with
    positional weights ``p = softplus(pos)`` (B,), per-motif level mixtures
    ``q = softmax(thr)``, and ``c`` the mean whole-window count of each motif at each level
    over the training windows (so every level weighs alike before ``q`` is learned).
    """

    def __init__(self, n_features: int, n_bins: int) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(n_bins))
        self.thr = nn.Parameter(torch.zeros(n_features, len(LEVELS)))
        self.register_buffer("level_scale", torch.ones(n_features, len(LEVELS)))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("sd", torch.ones(n_features))

    def raw(self, stats: torch.Tensor) -> torch.Tensor:
        """(N, M+F, B, levels+1) -> unstandardised activity (N, M+F)."""
        p = F.softplus(self.pos) / math.log(2.0)  # 1 at initialisation
        q = torch.softmax(self.thr, dim=-1) / self.level_scale
        weight = p[None, :, None] * q[:, None, :]  # (M+F, B, levels)
        pooled = (stats[..., : len(LEVELS)] * weight).sum((2, 3))
        return torch.log1p(pooled.clamp(min=0.0))

    def forward(self, stats: torch.Tensor) -> torch.Tensor:
        """(N, M+F, B, levels+1) -> standardised activity z (N, M+F)."""
        return (self.raw(stats) - self.mean) / self.sd

    def set_normalization(self, stats: torch.Tensor) -> None:
        """Level scales, mean and SD from the statistics (N, M+F, B, levels+1) of training
        windows."""
        with torch.no_grad():
            counts = stats[..., : len(LEVELS)].sum(2).mean(0)  # (M+F, levels)
            self.level_scale.copy_(counts.clamp(min=0.05))
            raw = self.raw(stats)
            self.mean.copy_(raw.mean(0))
            sd = raw.std(0).clamp(min=1e-3) if raw.shape[0] > 1 else torch.ones_like(self.sd)
            self.sd.copy_(sd)


class MotifPrismModel(PrototypeMixin, nn.Module):
    """Motif-grounded EPI model ``logit = (U_I - R_E) / T`` (see the module docstring).

    Same interface as :class:`~epcli.model.prism.PrismModel`: ``encode_enhancers``,
    ``encode_promoters``, ``pair_features``, ``make_prototype``, ``r_e``, ``temperature``,
    ``forward``, ``score`` and the ``population_prototype`` buffer. Tokens are the standardised
    motif activities, shape (N, M + F).

    Parameters
    ----------
    cfg : ModelConfig
        ``kind == "prism"``; ``cfg.motif_ids`` gives M and ``cfg.motif_width`` K.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        m = len(cfg.motif_ids or [])
        self.scanner = MotifScanner(
            m,
            max(cfg.motif_width, 1),
            cfg.motif_bins,
            cfg.n_free_filters,
            cfg.free_filter_len,
            finetune=cfg.motif_finetune or not cfg.use_motif_prior,
            cache_bytes=cfg.motif_cache_mb * 2**20,
        )
        nf = self.scanner.n_features
        self.act_e = MotifActivity(nf, cfg.motif_bins)
        self.act_p = MotifActivity(nf, cfg.motif_bins)
        self.bias = nn.Parameter(torch.zeros(()))
        self.w_e = nn.Parameter(torch.zeros(nf))
        self.w_p = nn.Parameter(torch.zeros(nf))
        r = cfg.interaction_rank
        self.u = nn.Parameter(torch.randn(r, nf) * 0.02)
        self.v = nn.Parameter(torch.randn(r, nf) * 0.02)
        self.dist = nn.Parameter(torch.zeros(2))
        # non-negative gates of e(x) (kept >= 0 by the proximal step), start at 0.1
        self.gate = nn.Parameter(torch.full((nf,), 0.1))
        init_prototype_params(self, cfg, nf)
        self._active: torch.Tensor | None = None
        self.prune_scan = True
        self.register_load_state_dict_post_hook(lambda *_: setattr(self, "_active", None))
        if not cfg.use_motif_prior:
            with torch.no_grad():
                self.scanner.weight.normal_(0.0, 1.0)

    # ---------------------------------------------------------------- set-up
    def set_motifs(self, weights: np.ndarray, lengths: np.ndarray) -> None:
        """Initialise the PWM layer from log-odds matrices (M, 4, K) and lengths (M,).

        Ignored (the layer keeps its random initialisation) when ``use_motif_prior`` is off.
        """
        if self.cfg.use_motif_prior:
            self.scanner.set_matrices(weights, lengths)
        else:
            with torch.no_grad():
                self.scanner.lengths.copy_(torch.as_tensor(lengths, dtype=torch.long))

    @property
    def env_dim(self) -> int:
        """Width of e(x) and of prototypes: M + F."""
        return self.scanner.n_features

    def _device(self) -> torch.device:
        return self.w_e.device

    def scan_stats(self, codes: np.ndarray, batch: int = 64) -> torch.Tensor:
        """Scan statistics of windows (N, L) -> (N, M+F, B, levels+1), without gradients."""
        with torch.no_grad():
            parts = [
                self.scanner(as_codes(codes[a : a + batch], self._device()))
                for a in range(0, len(codes), batch)
            ]
        return torch.cat(parts) if parts else torch.zeros(0)

    def fit_normalization(self, enh_stats: torch.Tensor, pro_stats: torch.Tensor) -> None:
        """Standardise motif activities over the training windows' scan statistics."""
        self.act_e.set_normalization(enh_stats)
        self.act_p.set_normalization(pro_stats)

    # ---------------------------------------------------------------- encoders
    def encode_enhancers(self, codes: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Enhancer windows: codes (N, Le) -> motif activity z_E (N, M + F)."""
        return self.act_e(self.scanner(as_codes(codes, self._device()), self._subset()))

    def encode_promoters(self, codes: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Promoter windows: codes (N, Lp) -> motif activity z_P (N, M + F)."""
        return self.act_p(self.scanner(as_codes(codes, self._device()), self._subset()))

    # ---------------------------------------------------------------- U_I
    def gates(self) -> torch.Tensor:
        """Non-negative per-motif gates g of e(x), shape (M + F,)."""
        return self.gate.clamp(min=0.0)

    def distance_term(self, log_dist: torch.Tensor) -> torch.Tensor:
        """f(log distance), shape (B,); 0 when ``use_distance`` is off."""
        if not self.cfg.use_distance:
            return log_dist.new_zeros(log_dist.shape)
        c = log_dist - LOG_DIST_CENTRE
        return self.dist[0] * c + self.dist[1] * c * c

    def pair_features(
        self, enh_tok: torch.Tensor, pro_tok: torch.Tensor, log_dist: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Features of pairs from cached anchor activities.

        Parameters
        ----------
        enh_tok, pro_tok : torch.Tensor, shape (B, M + F)
        log_dist : torch.Tensor, shape (B,)

        Returns
        -------
        dict
            ``u_i`` (B,); ``env`` (B, M + F) = g * z_E; ``ui_feat`` (B, 2 R + 2), the
            low-dimensional features behind U_I (interaction factors and additive terms).
        """
        ld = torch.as_tensor(log_dist).to(enh_tok).reshape(-1)
        add_e = enh_tok @ self.w_e
        add_p = pro_tok @ self.w_p
        fe, fp = enh_tok @ self.u.T, pro_tok @ self.v.T
        inter = (fe * fp).sum(-1) if self.cfg.use_interaction else add_e.new_zeros(add_e.shape)
        u_i = self.bias + add_e + add_p + inter + self.distance_term(ld)
        env = enh_tok * self.gates()
        ui_feat = torch.cat([fe, fp, add_e[:, None], add_p[:, None]], dim=1)
        return {"u_i": u_i, "env": env, "ui_feat": ui_feat}

    def interaction_matrix(self) -> torch.Tensor:
        """W = U^T V, shape (M + F, M + F): the E x P motif pair weights."""
        return self.u.T @ self.v

    def _sparse_params(self) -> list[torch.Tensor]:
        # not the R_E gates: the warm start already keeps at most GATE_MOTIFS of them, and
        # an L1 step sized for U_I's weights zeroes them all while R_E's scale is small
        ps = [self.w_e, self.w_p]
        if self.cfg.use_interaction:
            ps += [self.u, self.v]
        return ps

    def regularization(self) -> torch.Tensor:
        """The L1 penalty ``sparsity * (|w_E| + |w_P| + |U| + |V|)`` (scalar tensor).

        Training applies it through :meth:`proximal_step` (exact zeros) and logs its value.
        """
        lam = self.cfg.sparsity
        return lam * sum(p.abs().sum() for p in self._sparse_params())

    @torch.no_grad()
    def proximal_step(self, opt: torch.optim.Optimizer) -> None:
        """Apply the L1 penalty as a proximal step after an Adam(W) step.

        Each sparse parameter is soft-thresholded by ``lr * sparsity / (sqrt(v_hat) + eps)``,
        the L1 step in Adam's own per-parameter metric (``v_hat``: its bias-corrected second
        moment), so a weight stays non-zero only while its gradient keeps outweighing the
        penalty. Weights become exactly 0, and unused motifs drop out of the model and of the
        scan at prediction time. Gates are kept non-negative.
        """
        lam = self.cfg.sparsity
        group = opt.param_groups[0]
        lr, (_, beta2), eps = group["lr"], group["betas"], group["eps"]
        for p in self._sparse_params():
            st = opt.state.get(p, {})
            if lam <= 0 or "exp_avg_sq" not in st:
                continue
            step = float(st["step"])
            vhat = st["exp_avg_sq"] / (1.0 - beta2**step)
            thr = lr * lam / (vhat.sqrt() + eps)
            p.copy_(p.sign() * (p.abs() - thr).clamp(min=0.0))
        self.gate.clamp_(min=0.0)
        self._active = None

    def active_motifs(self) -> torch.Tensor:
        """Indices of the PWMs that any term uses (a non-zero weight, factor or gate).

        Returns
        -------
        torch.Tensor, shape (A,), int64
            Motifs outside it contribute exactly 0 to U_I and R_E, so they need no scan.
        """
        m = self.scanner.n_motifs
        used = (self.w_e[:m] != 0) | (self.w_p[:m] != 0) | (self.gates()[:m] != 0)
        if self.cfg.use_interaction:
            used = used | (self.u[:, :m] != 0).any(0) | (self.v[:, :m] != 0).any(0)
        return used.nonzero().view(-1)

    def _subset(self) -> torch.Tensor | None:
        """Motifs to scan: all while training, the active ones otherwise (cached).

        ``prune_scan = False`` (set while a training run validates between epochs, when the
        active set still changes) scans every motif, so memoised scans stay reusable.
        """
        if not self.prune_scan or self.training:
            return None
        if self.scanner.weight.requires_grad and torch.is_grad_enabled():
            return None
        if getattr(self, "_active", None) is None:
            act = self.active_motifs()
            self._active = None if act.numel() == self.scanner.n_motifs else act
        return self._active

    def train(self, mode: bool = True) -> MotifPrismModel:
        """Switch mode (and forget the cached set of active motifs)."""
        self._active = None
        return super().train(mode)

    # ---------------------------------------------------------------- R_E
    def r_e_linear(self, env: torch.Tensor, proto: torch.Tensor) -> torch.Tensor:
        """``(|e - mu_pos|^2 - |e - mu_neg|^2) / 2`` in its linear form, shape (B,)."""
        proto = torch.as_tensor(proto).to(env)
        mu_neg, mu_pos = proto[..., 0, :], proto[..., 1, :]
        diff = (env * (mu_neg - mu_pos)).sum(-1)
        return diff + 0.5 * (mu_pos.pow(2).sum(-1) - mu_neg.pow(2).sum(-1))

    def r_e(self, env: torch.Tensor, proto: torch.Tensor) -> torch.Tensor:
        """Environment resistance ``re_bound * tanh(s * r_e_linear)``, shape (B,).

        Identically 0 when ``use_re`` is off. ``proto`` is (2, M + F) or (B, 2, M + F).
        """
        if not self.cfg.use_re:
            return env.new_zeros(env.shape[0])
        x = torch.nan_to_num(self.re_scale() * self.r_e_linear(env, proto), nan=0.0)
        return self.cfg.re_bound * torch.tanh(x)

    # ---------------------------------------------------------------- forward
    def forward(
        self,
        enh: torch.Tensor,
        pro: torch.Tensor,
        log_dist: torch.Tensor,
        proto: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Score pairs end to end: codes (B, Le), (B, Lp), log distance (B,) -> dict."""
        out = self.pair_features(self.encode_enhancers(enh), self.encode_promoters(pro), log_dist)
        return self.score(out, proto)

    # ---------------------------------------------------------------- explanations
    def contributions(
        self,
        enh_tok: torch.Tensor,
        pro_tok: torch.Tensor,
        log_dist: torch.Tensor,
        proto: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Every part of U_I and R_E for pairs, so that the parts add up to the logit.

        Parameters
        ----------
        enh_tok, pro_tok : torch.Tensor, shape (B, M + F)
        log_dist : torch.Tensor, shape (B,)
        proto : torch.Tensor, shape (2, M + F), optional

        Returns
        -------
        dict
            ``enhancer`` (B, M+F): w_E * z_E; ``promoter`` (B, M+F): w_P * z_P; ``pair``
            (B, M+F, M+F): z_E[i] W[i, j] z_P[j]; ``distance`` (B,); ``bias`` (B,); ``r_e``
            (B,) and ``r_e_motif`` (B, M+F): the linear R_E part of each motif before the
            bounded tanh (``r_e`` is the exact total); ``u_i``, ``logit`` (B,).
        """
        ld = torch.as_tensor(log_dist).to(enh_tok).reshape(-1)
        ce = enh_tok * self.w_e
        cp = pro_tok * self.w_p
        if self.cfg.use_interaction:
            pair = enh_tok[:, :, None] * self.interaction_matrix()[None] * pro_tok[:, None, :]
        else:
            pair = enh_tok.new_zeros(enh_tok.shape[0], enh_tok.shape[1], pro_tok.shape[1])
        dist = self.distance_term(ld)
        f = self.pair_features(enh_tok, pro_tok, ld)
        out = self.score(f, proto)
        p = self.population_prototype if proto is None else torch.as_tensor(proto).to(enh_tok)
        r_motif = f["env"] * (p[..., 0, :] - p[..., 1, :])
        return {
            "enhancer": ce,
            "promoter": cp,
            "pair": pair,
            "distance": dist,
            "bias": self.bias.expand(ce.shape[0]),
            "r_e": out["r_e"],
            "r_e_motif": r_motif,
            "u_i": out["u_i"],
            "logit": out["logit"],
        }


def feature_names(cfg: ModelConfig) -> tuple[list[str], list[str]]:
    """IDs and names of the M motifs then the F free filters (``free1``, ``free2``, ...)."""
    ids = list(cfg.motif_ids or [])
    names = list(cfg.motif_names or [])
    free = [f"free{i + 1}" for i in range(cfg.n_free_filters)]
    return ids + free, names + free


def top_motifs(model: MotifPrismModel, k: int = 20) -> list[dict]:
    """The motifs (and E x P motif pairs) with the largest effect on U_I, largest first.

    Motif activities are standardised, so a term's weight is the SD of its contribution
    over training windows: ``w_E[i]`` for an enhancer motif, ``w_P[i]`` for a promoter
    motif and ``W[i, j]`` for an E x P pair (times SD(z_E z_P), about 1).

    Parameters
    ----------
    model : MotifPrismModel
    k : int
        Entries to return.

    Returns
    -------
    list of dict
        ``{"part": "enhancer"|"promoter"|"pair", "id", "name", "effect"}`` (pairs also have
        ``"promoter_id"``, ``"promoter_name"``), sorted by decreasing ``|effect|``.
    """
    ids, names = feature_names(model.cfg)
    with torch.no_grad():
        cand = []
        for part, w in (("enhancer", model.w_e), ("promoter", model.w_p)):
            w = w.detach().cpu().numpy()
            for i in np.argsort(-np.abs(w))[:k]:
                if w[i] != 0:
                    cand.append(
                        {"part": part, "id": ids[i], "name": names[i], "effect": float(w[i])}
                    )
        if model.cfg.use_interaction:
            wm = model.interaction_matrix().detach().cpu().numpy()
            flat = np.argsort(-np.abs(wm), axis=None)[:k]
            for f in flat:
                i, j = np.unravel_index(f, wm.shape)
                if wm[i, j] != 0:
                    cand.append(
                        {
                            "part": "pair",
                            "id": ids[i],
                            "name": names[i],
                            "promoter_id": ids[j],
                            "promoter_name": names[j],
                            "effect": float(wm[i, j]),
                        }
                    )
    cand.sort(key=lambda d: -abs(d["effect"]))
    return cand[:k]


def prototype_tfs(
    model: MotifPrismModel, proto: np.ndarray, reference: np.ndarray | None = None, k: int = 10
) -> tuple[list[dict], list[dict]]:
    """TFs a cell prototype favours and disfavours.

    A prototype's direction ``mu_pos - mu_neg`` over e(x) = g * z_E says which enhancer motifs
    lower the cell's resistance (favoured) or raise it (disfavoured). With a ``reference``
    (the population prototype) the direction is taken relative to it, so the TFs named are
    the ones this cell favours more than the training cells on average.

    Parameters
    ----------
    model : MotifPrismModel
    proto, reference : np.ndarray, shape (2, M + F)
    k : int

    Returns
    -------
    favoured, disfavoured : list of dict
        ``{"id", "name", "weight"}``, largest ``|weight|`` first; weights are 0-free.
    """
    ids, names = feature_names(model.cfg)
    p = np.asarray(proto, dtype=np.float64)
    d = p[1] - p[0]
    if reference is not None:
        r = np.asarray(reference, dtype=np.float64)
        d = d - (r[1] - r[0])
    order = np.argsort(-d)
    fav = [{"id": ids[i], "name": names[i], "weight": float(d[i])} for i in order[:k] if d[i] > 0]
    dis = [
        {"id": ids[i], "name": names[i], "weight": float(d[i])} for i in order[::-1][:k] if d[i] < 0
    ]
    return fav, dis


#: Parts of U_I that :func:`ablated` can switch off.
ABLATIONS = ("enhancer_motifs", "promoter_motifs", "interaction", "free_filters", "r_e_gates")


class ablated:
    """Context manager: a part of a trained model switched off (weights restored on exit).

    Parameters
    ----------
    model : MotifPrismModel
    part : str
        One of :data:`ABLATIONS`: the additive enhancer or promoter motif terms, the E x P
        interaction, the free filters (their columns in every term), or the R_E gates.
    """

    def __init__(self, model: MotifPrismModel, part: str) -> None:
        if part not in ABLATIONS:
            raise ValueError(f"unknown part {part!r}; one of {ABLATIONS}")
        self.model, self.part = model, part
        self._saved: dict[str, torch.Tensor] = {}

    def __enter__(self) -> MotifPrismModel:
        m = self.model
        names = {
            "enhancer_motifs": ["w_e"],
            "promoter_motifs": ["w_p"],
            "interaction": ["u", "v"],
            "free_filters": ["w_e", "w_p", "u", "v", "gate"],
            "r_e_gates": ["gate"],
        }[self.part]
        nm = m.scanner.n_motifs
        with torch.no_grad():
            for n in names:
                p = getattr(m, n)
                self._saved[n] = p.detach().clone()
                if self.part == "free_filters":
                    p[..., nm:] = 0.0
                else:
                    p.zero_()
        m._active = None
        return m

    def __exit__(self, *exc) -> None:
        with torch.no_grad():
            for n, v in self._saved.items():
                getattr(self.model, n).copy_(v)
        self.model._active = None
