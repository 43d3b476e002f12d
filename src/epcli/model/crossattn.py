"""CrossAttnModel baseline: same encoder, plain bidirectional cross-attention, BCE.

No RoPE, no environment resistance, no prototype, temperature fixed at 1. It exposes the
same methods as :class:`~epcli.model.prism.PrismModel` so training, prediction and
evaluation treat both alike: ``pair_features`` returns ``u_i`` (= the logit) and
``env=None``; ``make_prototype`` returns None; ``r_e`` returns zeros.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from epcli.model.config import ModelConfig
from epcli.model.encoder import SequenceEncoder
from epcli.model.prism import PairInteraction, _as_log_dist, _EncodeMixin


class CrossAttnModel(_EncodeMixin, nn.Module):
    """Plain cross-attention EPI baseline (see module docstring).

    Parameters
    ----------
    cfg : ModelConfig
        ``use_re``, ``use_rope``, ``env_dim``, ``t_min``/``t_max`` and ``re_bound`` are
        ignored; ``use_distance`` is honoured.
    """

    #: No prototype: the predictor writes ``"prototype": null`` for this model.
    population_prototype = None

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.encoder = SequenceEncoder(cfg)
        self.interaction = PairInteraction(cfg, use_rope=False)
        self.hidden = nn.Sequential(
            nn.Linear(self.interaction.z_dim, d), nn.GELU(), nn.Dropout(cfg.dropout)
        )
        self.out = nn.Linear(d, 1)

    def pair_features(
        self, enh_tok: torch.Tensor, pro_tok: torch.Tensor, log_dist: torch.Tensor
    ) -> dict[str, torch.Tensor | None]:
        """Features of pairs from cached anchor tokens.

        Parameters
        ----------
        enh_tok : torch.Tensor, shape (B, Te, d)
        pro_tok : torch.Tensor, shape (B, Tp, d)
        log_dist : torch.Tensor, shape (B,)

        Returns
        -------
        dict
            ``u_i`` (B,) (the logit), ``env`` None, ``ui_feat`` (B, d_model).
        """
        z = self.interaction(enh_tok, pro_tok, _as_log_dist(log_dist, enh_tok))
        h = self.hidden(z)
        return {"u_i": self.out(h).squeeze(-1), "env": None, "ui_feat": h}

    def make_prototype(
        self, env: torch.Tensor | None, labels: torch.Tensor, u_i: torch.Tensor | None = None
    ) -> None:
        """No prototypes in this model: returns None."""
        return None

    def set_population_prototype(self, proto: torch.Tensor | np.ndarray | None) -> None:
        """No-op (kept so callers can treat every torch model alike)."""

    def r_e(self, env: torch.Tensor | None, proto: torch.Tensor | None) -> torch.Tensor:
        """Zeros; shape (B,) when ``env`` is a (B, ...) tensor, else a scalar 0."""
        if env is None:
            return torch.zeros((), device=self._device())
        return env.new_zeros(env.shape[0])

    def temperature(self) -> torch.Tensor:
        """Fixed temperature 1 (scalar tensor)."""
        return torch.ones((), device=self._device())

    def forward(
        self,
        enh: torch.Tensor,
        pro: torch.Tensor,
        log_dist: torch.Tensor,
        proto: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor | None]:
        """Score pairs: codes (B, Le), (B, Lp), log distance (B,) -> dict.

        ``logit`` (B,) = ``u_i``, ``r_e`` (B,) zeros, ``env`` None, ``ui_feat`` (B, d_model).
        ``proto`` is accepted and ignored.
        """
        out = self.pair_features(self.encode_enhancers(enh), self.encode_promoters(pro), log_dist)
        return self.score(out, proto)

    def score(
        self, feats: dict[str, torch.Tensor | None], proto: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor | None]:
        """Complete :meth:`pair_features` output with ``r_e`` (zeros) and ``logit`` (= u_i)."""
        u = feats["u_i"]
        return {**feats, "r_e": torch.zeros_like(u), "logit": u}
