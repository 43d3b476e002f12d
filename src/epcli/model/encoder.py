"""Sequence encoder shared by enhancer and promoter windows.

one-hot DNA (N = all-zero row) -> convolution stem -> for each factor in ``pools``: (max-pool,
multi-scale residual block with parallel kernels 7/15/31) -> tokens ``(N, T, d)`` plus a
learned type embedding (enhancer or promoter).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from epcli.model.config import ModelConfig

#: Complement of each base code: A<->T, C<->G, N stays N.
_COMPLEMENT = np.array([3, 2, 1, 0, 4], dtype=np.uint8)

ENHANCER = 0
PROMOTER = 1


def reverse_complement(codes: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Reverse complement of base-code windows (A,C,G,T,N = 0..4).

    Parameters
    ----------
    codes : np.ndarray or torch.Tensor, shape (..., L)
        Base codes; the last axis is the sequence.

    Returns
    -------
    Same type, dtype and shape as ``codes``: complemented (A<->T, C<->G, N stays N) and
    reversed along the last axis. Codes above 4 are treated as N.
    """
    if isinstance(codes, torch.Tensor):
        table = torch.as_tensor(_COMPLEMENT, device=codes.device).to(codes.dtype)
        return table[codes.long().clamp(0, 4)].flip(-1)
    arr = np.asarray(codes)
    out = _COMPLEMENT[np.clip(arr, 0, 4).astype(np.intp)][..., ::-1]
    return np.ascontiguousarray(out).astype(arr.dtype, copy=False)


def one_hot(codes: torch.Tensor) -> torch.Tensor:
    """One-hot encoding, channels first.

    Parameters
    ----------
    codes : torch.Tensor, shape (N, L)
        Base codes 0..4 (any integer dtype); N (4) and anything above become all-zero rows.

    Returns
    -------
    torch.Tensor, shape (N, 4, L), float32
    """
    c = codes.long()
    out = F.one_hot(c.clamp(0, 4), 5)[..., :4].to(torch.float32)
    return out.transpose(1, 2)


class ChannelNorm(nn.Module):
    """Layer norm over the channel axis of ``(N, C, L)`` tensors (position-wise)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels, 1))
        self.bias = nn.Parameter(torch.zeros(channels, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, L) -> (N, C, L)."""
        mu = x.mean(dim=1, keepdim=True)
        var = (x - mu).pow(2).mean(dim=1, keepdim=True)
        return (x - mu) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class MultiScaleBlock(nn.Module):
    """Residual block with parallel convolutions of several kernel sizes, summed.

    ``x + drop(FFN(GELU(sum_k conv_k(norm(x)))))``; with ``depthwise`` each branch is a
    per-channel convolution and the pointwise FFN mixes channels, otherwise each branch is a
    full convolution and the FFN is a single 1x1 projection.
    """

    def __init__(
        self, d: int, kernels: tuple[int, ...], depthwise: bool, ffn_mult: int, dropout: float
    ) -> None:
        super().__init__()
        groups = d if depthwise else 1
        self.norm = ChannelNorm(d)
        self.branches = nn.ModuleList(
            nn.Conv1d(d, d, k, padding=k // 2, groups=groups) for k in kernels
        )
        if depthwise:
            self.mix = nn.Sequential(
                nn.Conv1d(d, ffn_mult * d, 1), nn.GELU(), nn.Conv1d(ffn_mult * d, d, 1)
            )
        else:
            self.mix = nn.Conv1d(d, d, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, d, L) -> (N, d, L)."""
        h = self.norm(x)
        s = self.branches[0](h)
        for conv in self.branches[1:]:
            s = s + conv(h)
        return x + self.drop(self.mix(F.gelu(s)))


class SequenceEncoder(nn.Module):
    """Shared DNA encoder: base codes ``(N, L)`` -> tokens ``(N, T, d)``.

    ``T = ceil(L / prod(pools))`` (see :meth:`ModelConfig.n_tokens`). The same weights
    encode enhancers and promoters; a learned type embedding tells them apart.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.stem = nn.Conv1d(4, d, cfg.stem_kernel, padding=cfg.stem_kernel // 2)
        self.pools = nn.ModuleList(nn.MaxPool1d(p, ceil_mode=True) for p in cfg.pools)
        self.blocks = nn.ModuleList(
            MultiScaleBlock(d, cfg.ms_kernels, cfg.ms_depthwise, cfg.ffn_mult, cfg.dropout)
            for _ in cfg.pools
        )
        self.out_norm = nn.LayerNorm(d)
        self.type_embed = nn.Embedding(2, d)

    def forward(self, codes: torch.Tensor, kind: int) -> torch.Tensor:
        """Encode windows.

        Parameters
        ----------
        codes : torch.Tensor, shape (N, L)
            Base codes 0..4.
        kind : int
            :data:`ENHANCER` (0) or :data:`PROMOTER` (1).

        Returns
        -------
        torch.Tensor, shape (N, T, d)
        """
        x = F.gelu(self.stem(one_hot(codes)))
        for pool, block in zip(self.pools, self.blocks, strict=True):
            x = block(pool(x))
        tok = self.out_norm(x.transpose(1, 2))
        return tok + self.type_embed.weight[kind]


def as_codes(codes: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Base codes as a long tensor of shape (N, L) on ``device`` (numpy accepted)."""
    t = torch.as_tensor(np.asarray(codes)) if not isinstance(codes, torch.Tensor) else codes
    if t.dim() != 2:
        raise ValueError(f"codes must have shape (N, L), got {tuple(t.shape)}")
    return t.to(device=device, dtype=torch.long)
