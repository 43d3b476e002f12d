"""Position-level kernels of the PWM scan: scores on both strands, their maxima over runs of
positions and over rings of distance from the window centre, hit counts at levels, and the
orientation a window is scanned in. :class:`~epcli.model.motif_scan.MotifScanner` builds on
them.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from epcli.model.encoder import one_hot, reverse_complement

#: Resolution (bp) of hit counting: the best site of each run of RES start positions counts
#: once, so overlapping matches of one motif are one hit (and counting is RES times cheaper).
RES = 8


@functools.lru_cache(maxsize=512)
def ring_bounds(
    n_pos: int, width: int, length: int, n_bins: int, step: int = 1
) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Positions of each ring of distance from the window centre.

    Scan position i covers sites starting at ``i * step .. i * step + step - 1``, centred at
    ``i * step + (step - 1) / 2 + (width - 1) / 2``; its ring is
    ``floor(|centre - (length - 1) / 2| / (length / 2) * n_bins)`` (clamped to the last ring).
    Each ring is one or two contiguous runs of positions (left and right of the centre).

    Returns
    -------
    tuple (n_bins) of tuple of (start, stop)
        Half-open position ranges of each ring (empty for an empty ring); cached.
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
    return tuple(tuple(runs) for runs in out)


@functools.lru_cache(maxsize=512)
def ring_matrix(n_pos: int, width: int, length: int, n_bins: int, step: int) -> torch.Tensor:
    """(n_pos, n_bins) 0/1 matrix of :func:`ring_bounds`: ``x @ it`` sums each ring."""
    m = torch.zeros(n_pos, n_bins)
    for b, runs in enumerate(ring_bounds(n_pos, width, length, n_bins, step)):
        for start, stop in runs:
            m[start:stop, b] = 1.0
    return m


def ring_reduce(x: torch.Tensor, bounds, how: str) -> torch.Tensor:
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


def hit_counts(
    rel: torch.Tensor, levels: tuple[float, ...] | torch.Tensor, beta: float
) -> list[torch.Tensor]:
    """Hits at each level: ``rel >= level`` as 0/1 (N, C, P) tensors.

    ``levels``: one level per count shared by the C matrices, or a (C, L) tensor of each
    matrix's own levels. When ``rel`` requires gradients, each count passes the gradient of
    ``sigmoid((rel - level) / beta)`` (straight-through), so a fine-tuned PWM layer computes
    the same values as a frozen one and still learns.
    """
    if isinstance(levels, torch.Tensor):
        levels = [levels[:, j].to(rel)[None, :, None] for j in range(levels.shape[1])]
    out = []
    for lv in levels:
        hard = (rel >= lv).to(rel.dtype)
        if rel.requires_grad:
            soft = torch.sigmoid((rel - lv) / beta)
            hard = hard + soft - soft.detach()
        out.append(hard)
    return out


def strand_max(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
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


def kmer_columns(x: torch.Tensor, width: int) -> torch.Tensor:
    """The k-mer columns (im2col) of one-hot windows, for every matrix up to ``width`` bp.

    Parameters
    ----------
    x : torch.Tensor, shape (N, 4, L), one-hot
    width : int

    Returns
    -------
    torch.Tensor, shape (N, L, width, 4)
        Row i holds bases i .. i + width - 1 (zeros past the window's end); a matrix of
        width k reads the first k of them, so one copy serves every matrix.
    """
    return F.pad(x, (0, width - 1)).unfold(2, width, 1).permute(0, 2, 3, 1).contiguous()


def use_gemm(x: torch.Tensor) -> bool:
    """Scan by matrix products over :func:`kmer_columns` (CPU, no gradient) or by conv1d."""
    return x.device.type == "cpu" and not torch.is_grad_enabled()


#: Matrices scanned at once from which the CPU scan builds :func:`kmer_columns` (its copy
#: costs more than it saves for a trained model's few tens of motifs).
GEMM_MOTIFS = 128


def strand_max_pool(
    x: torch.Tensor, w: torch.Tensor, res: int, cols: torch.Tensor | None = None
) -> torch.Tensor:
    """:func:`strand_max` followed by a max over runs of ``res`` positions (the last run
    may be shorter), shape (N, C, ceil((L - k + 1) / res)).

    On CPU without gradients: one matrix product of the k-mer columns (``cols``,
    :func:`kmer_columns`) with both strands' weights, maxima taken in its (N, L, 2C) layout
    (1.4x faster than conv1d, same values; a window's values do not depend on the batch).
    """
    if not use_gemm(x) or (cols is None and w.shape[0] < GEMM_MOTIFS):
        # the position maximum first, then the strand maximum on the res-times smaller result
        both = torch.cat([w, w.flip(1).flip(2)], dim=0)
        m = F.max_pool1d(F.conv1d(x, both), res, ceil_mode=True)
        return torch.maximum(m[:, : w.shape[0]], m[:, w.shape[0] :])
    c, k = w.shape[0], w.shape[2]
    n, length = x.shape[0], x.shape[2]
    if cols is None:
        cols = kmer_columns(x, k)
    both = torch.cat([w, w.flip(1).flip(2)], dim=0).permute(0, 2, 1).reshape(2 * c, 4 * k)
    # rows of the first k bases of every column: a strided view, no copy
    a = cols[:, :, :k, :].reshape(n * length, 4 * k)
    s = (a @ both.T).view(n, length, 2 * c)[:, : length - k + 1]  # (N, L', 2C)
    # the position maximum first (runs of res rows, the last run possibly shorter), then
    # the strand maximum on the res-times smaller result
    whole = s.shape[1] // res
    runs = [s[:, : whole * res].reshape(n, whole, res, 2 * c).amax(2)]
    if whole * res < s.shape[1]:
        runs.append(s[:, whole * res :].amax(1, keepdim=True))
    m = torch.cat(runs, dim=1) if len(runs) > 1 else runs[0]
    return torch.maximum(m[..., :c], m[..., c:]).transpose(1, 2).contiguous()


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


def scan_input(codes: torch.Tensor) -> torch.Tensor:
    """Windows as the scan reads them: base codes (N, L), int64 -> the one-hot (N, 4, L),
    float32, of each window's :func:`canonical_orientation`."""
    return one_hot(canonical_orientation(codes)).contiguous().float()
