"""PrismModel: P(y=1 | x, c) = sigmoid((U_I(x) - R_E(x; c)) / T).

* U_I, intrinsic potential, from sequence and distance only (identical in every cell line):
  shared encoder -> bidirectional cross-attention (E<-P and P<-E, full softmax, RoPE) ->
  mean+max pooling of both sides -> pair vector z (+ log distance) -> MLP -> U_I.
* R_E, environment resistance: a second small head maps z to environment features e(x); a cell
  line is a prototype (class means of e over a labeled support set, prototypical networks) and
  ``R_E = re_bound * tanh(s * (|e - mu_pos|^2 - |e - mu_neg|^2) / env_dim)`` with a learned
  positive scale s. Without a prototype the population prototype buffer is used (zero-shot).
* T, a temperature bounded in ``[t_min, t_max]``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from epcli.model.config import ModelConfig
from epcli.model.encoder import ENHANCER, PROMOTER, SequenceEncoder, as_codes


# ---------------------------------------------------------------------------- attention
def rope_angles(n: int, dim: int, base: float, device: torch.device) -> torch.Tensor:
    """Rotation angles of RoPE for ``n`` tokens at positions centred on the window middle.

    Token t sits at ``t - (n - 1) / 2``, so positions of an enhancer and a promoter token are
    both offsets from their anchor's midpoint, in units of one token.

    Returns
    -------
    torch.Tensor, shape (n, dim // 2)
    """
    pos = torch.arange(n, device=device, dtype=torch.float32) - (n - 1) / 2.0
    inv = base ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    return pos[:, None] * inv[None, :]


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels (half-split layout).

    Parameters
    ----------
    x : torch.Tensor, shape (B, H, T, dh)
    angles : torch.Tensor, shape (T, dh // 2)

    Returns
    -------
    torch.Tensor, shape (B, H, T, dh)
    """
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class CrossAttention(nn.Module):
    """Multi-head attention of queries from one sequence over keys/values of the other."""

    def __init__(self, d: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.h = n_heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.o = nn.Linear(d, d)
        self.p = dropout

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        ang_x: torch.Tensor | None = None,
        ang_y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Queries from x (B, Tx, d), keys/values from y (B, Ty, d) -> (B, Tx, d).

        ``ang_x``/``ang_y`` (RoPE angles, shapes (Tx, dh/2), (Ty, dh/2)) rotate q and k.
        """
        b, tx, d = x.shape
        ty = y.shape[1]
        dh = d // self.h
        q = self.q(x).view(b, tx, self.h, dh).transpose(1, 2)
        k, v = self.kv(y).view(b, ty, 2, self.h, dh).permute(2, 0, 3, 1, 4)
        if ang_x is not None and ang_y is not None:
            q = apply_rope(q, ang_x)
            k = apply_rope(k, ang_y)
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0)
        return self.o(a.transpose(1, 2).reshape(b, tx, d))


class BiCrossLayer(nn.Module):
    """One bidirectional cross-attention layer (E<-P and P<-E), post-norm, with FFNs."""

    def __init__(self, d: int, n_heads: int, ffn_mult: int, dropout: float) -> None:
        super().__init__()
        self.att_e = CrossAttention(d, n_heads, dropout)
        self.att_p = CrossAttention(d, n_heads, dropout)
        self.ln_e1, self.ln_p1 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ln_e2, self.ln_p2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ffn_e = _ffn(d, ffn_mult, dropout)
        self.ffn_p = _ffn(d, ffn_mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        e: torch.Tensor,
        p: torch.Tensor,
        ang_e: torch.Tensor | None,
        ang_p: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """e: (B, Te, d), p: (B, Tp, d) -> updated (e, p), same shapes."""
        e2 = self.ln_e1(e + self.drop(self.att_e(e, p, ang_e, ang_p)))
        p2 = self.ln_p1(p + self.drop(self.att_p(p, e, ang_p, ang_e)))
        e2 = self.ln_e2(e2 + self.drop(self.ffn_e(e2)))
        p2 = self.ln_p2(p2 + self.drop(self.ffn_p(p2)))
        return e2, p2


def _ffn(d: int, mult: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d, mult * d), nn.GELU(), nn.Dropout(dropout), nn.Linear(mult * d, d)
    )


class PairInteraction(nn.Module):
    """Cross-attention stack + pooling: tokens of both anchors -> pair vector z.

    z = [mean(E), max(E), mean(P), max(P)] (+ log distance when ``use_distance``), shape
    ``(B, 4 d [+ 1])``.
    """

    def __init__(self, cfg: ModelConfig, use_rope: bool) -> None:
        super().__init__()
        self.cfg = cfg
        self.use_rope = use_rope
        self.layers = nn.ModuleList(
            BiCrossLayer(cfg.d_model, cfg.n_heads, cfg.ffn_mult, cfg.dropout)
            for _ in range(cfg.n_layers)
        )
        self.z_dim = 4 * cfg.d_model + int(cfg.use_distance)

    def forward(
        self, enh_tok: torch.Tensor, pro_tok: torch.Tensor, log_dist: torch.Tensor
    ) -> torch.Tensor:
        """(B, Te, d), (B, Tp, d), (B,) -> z (B, z_dim)."""
        e, p = enh_tok, pro_tok
        ang_e = ang_p = None
        if self.use_rope:
            dh = self.cfg.d_model // self.cfg.n_heads
            ang_e = rope_angles(e.shape[1], dh, self.cfg.rope_base, e.device)
            ang_p = rope_angles(p.shape[1], dh, self.cfg.rope_base, e.device)
        for layer in self.layers:
            e, p = layer(e, p, ang_e, ang_p)
        parts = [e.mean(1), e.amax(1), p.mean(1), p.amax(1)]
        if self.cfg.use_distance:
            parts.append(log_dist.to(e.dtype).view(-1, 1))
        return torch.cat(parts, dim=1)


def _as_log_dist(log_dist, ref: torch.Tensor) -> torch.Tensor:
    t = (
        torch.as_tensor(np.asarray(log_dist))
        if not isinstance(log_dist, torch.Tensor)
        else log_dist
    )
    return t.to(device=ref.device, dtype=ref.dtype).reshape(-1)


class _EncodeMixin:
    """encode_enhancers / encode_promoters shared by both torch models."""

    encoder: SequenceEncoder

    def encode_enhancers(self, codes: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Encode enhancer windows: codes (N, Le) uint8/long -> tokens (N, Te, d)."""
        return self.encoder(as_codes(codes, self._device()), ENHANCER)

    def encode_promoters(self, codes: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Encode promoter windows: codes (N, Lp) uint8/long -> tokens (N, Tp, d)."""
        return self.encoder(as_codes(codes, self._device()), PROMOTER)

    def _device(self) -> torch.device:
        return self.encoder.stem.weight.device


class PrototypeMixin:
    """Prototypes, temperature and the logit formula shared by both PRISM models.

    The one place where ``logit = (U_I - R_E) / T`` is written. A class using it defines
    ``cfg`` (``t_min``, ``t_max``), ``env_dim``, ``r_e(env, proto)`` and the parameters
    ``re_scale_raw`` and ``temp_raw`` and the ``population_prototype`` buffer
    (:func:`init_prototype_params`).
    """

    cfg: ModelConfig
    population_prototype: torch.Tensor
    re_scale_raw: nn.Parameter
    temp_raw: nn.Parameter

    # -------------------------------------------------------------- prototypes and R_E
    def make_prototype(
        self, env: torch.Tensor, labels: torch.Tensor, u_i: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Prototype of a cell line from a labeled support set.

        Parameters
        ----------
        env : torch.Tensor, shape (K, env_dim)
            Environment features of the support pairs.
        labels : torch.Tensor, shape (K,)
            1 / 0; other values (e.g. -1, unknown) are ignored.
        u_i : torch.Tensor, shape (K,), optional
            U_I of the support pairs; not used here (the motif prism fits its prototype
            with it as offset).

        Returns
        -------
        torch.Tensor, shape (2, env_dim)
            [negative-class mean, positive-class mean]. A class absent from the support set
            takes the corresponding row of :attr:`population_prototype`. Differentiable
            with respect to ``env``.
        """
        lab = torch.as_tensor(labels, device=env.device).reshape(-1)
        rows = []
        for cls in (0, 1):
            m = (lab == cls).to(env.dtype)
            n = m.sum()
            mean = (env * m[:, None]).sum(0) / n.clamp(min=1.0)
            fallback = self.population_prototype[cls].to(env.dtype)
            rows.append(torch.where(n > 0, mean, fallback))  # no host sync
        return torch.stack(rows)

    def set_population_prototype(self, proto: torch.Tensor | np.ndarray) -> None:
        """Store the population prototype (2, env_dim) used when ``proto`` is None."""
        p = torch.as_tensor(np.asarray(proto) if not isinstance(proto, torch.Tensor) else proto)
        if tuple(p.shape) != (2, self.env_dim):
            raise ValueError(f"prototype must have shape (2, {self.env_dim}), got {p.shape}")
        self.population_prototype.copy_(p.detach().to(self.population_prototype))

    def re_scale(self) -> torch.Tensor:
        """Positive scale s of R_E (scalar tensor)."""
        return F.softplus(self.re_scale_raw)

    def temperature(self) -> torch.Tensor:
        """Temperature T in ``[t_min, t_max]`` (scalar tensor)."""
        c = self.cfg
        return c.t_min + (c.t_max - c.t_min) * torch.sigmoid(self.temp_raw)

    def score(
        self, feats: dict[str, torch.Tensor], proto: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Complete :meth:`pair_features` output with ``r_e`` and ``logit`` for a prototype."""
        if proto is None:
            proto = self.population_prototype
        r_e = self.r_e(feats["env"], proto)
        logit = interaction_logit(feats["u_i"], r_e, self.temperature())
        return {**feats, "r_e": r_e, "logit": logit}


def interaction_logit(u_i, r_e, temperature):
    """The one logit formula of PRISM: ``(U_I - R_E) / T``.

    Works on torch tensors and numpy arrays alike (shapes broadcast; T a scalar).
    """
    return (u_i - r_e) / temperature


def init_prototype_params(model: nn.Module, cfg: ModelConfig, env_dim: int) -> None:
    """Add R_E's scale (s = 1), the temperature (T = 1 when in range) and the population
    prototype buffer (2, env_dim) to ``model``."""
    # R_E scale s = softplus(re_scale_raw), starts at 1.
    model.re_scale_raw = nn.Parameter(torch.tensor(math.log(math.e - 1.0)))
    # T = t_min + (t_max - t_min) * sigmoid(temp_raw), starts at 1 when 1 is in range.
    frac = (1.0 - cfg.t_min) / (cfg.t_max - cfg.t_min)
    frac = min(max(frac, 0.05), 0.95) if 0.0 < frac < 1.0 else 0.5
    model.temp_raw = nn.Parameter(torch.tensor(math.log(frac / (1.0 - frac))))
    model.register_buffer("population_prototype", torch.zeros(2, env_dim))


# ---------------------------------------------------------------------------- the model
class PrismModel(_EncodeMixin, PrototypeMixin, nn.Module):
    """EPI model ``logit = (U_I - R_E) / T`` (see module docstring).

    Parameters
    ----------
    cfg : ModelConfig
        ``cfg.kind`` should be ``"prism"``.

    Attributes
    ----------
    population_prototype : torch.Tensor, shape (2, env_dim)
        Buffer (saved in the state dict): [negative mean, positive mean] of e(x) over the
        training cells; the prototype used when none is given (zero-shot path).
    """

    #: Training episodes build each episode's prototype from its support set.
    episode_prototype = "support"

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.encoder = SequenceEncoder(cfg)
        self.interaction = PairInteraction(cfg, use_rope=cfg.use_rope)
        zd = self.interaction.z_dim
        self.ui_hidden = nn.Sequential(nn.Linear(zd, d), nn.GELU(), nn.Dropout(cfg.dropout))
        self.ui_out = nn.Linear(d, 1)
        self.env_head = nn.Sequential(nn.Linear(zd, d), nn.GELU(), nn.Linear(d, cfg.env_dim))
        init_prototype_params(self, cfg, cfg.env_dim)

    @property
    def env_dim(self) -> int:
        """Width of e(x) and of prototypes."""
        return self.cfg.env_dim

    # -------------------------------------------------------------- pair features
    def pair_features(
        self, enh_tok: torch.Tensor, pro_tok: torch.Tensor, log_dist: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Features of pairs from cached anchor tokens.

        Parameters
        ----------
        enh_tok : torch.Tensor, shape (B, Te, d)
        pro_tok : torch.Tensor, shape (B, Tp, d)
        log_dist : torch.Tensor, shape (B,)
            :func:`epcli.core.arrays.log_distance` of the pair distances.

        Returns
        -------
        dict
            ``u_i`` (B,), intrinsic potential (independent of any prototype);
            ``env`` (B, env_dim), environment features e(x);
            ``ui_feat`` (B, d_model), the hidden features behind U_I.
        """
        z = self.interaction(enh_tok, pro_tok, _as_log_dist(log_dist, enh_tok))
        h = self.ui_hidden(z)
        u_i = self.ui_out(h).squeeze(-1)
        env = self.env_head(z.detach() if self.cfg.env_detach else z)
        return {"u_i": u_i, "env": env, "ui_feat": h}

    # -------------------------------------------------------------- R_E
    def r_e(self, env: torch.Tensor, proto: torch.Tensor) -> torch.Tensor:
        """Environment resistance, bounded by ``re_bound``.

        ``R_E = re_bound * tanh(s * (|e - mu_pos|^2 - |e - mu_neg|^2) / env_dim)``: pairs whose
        environment features lie nearer the cell's positive prototype than its negative one
        meet less resistance. The difference of squared distances is computed in its
        expanded, linear-in-e form ``2 e.(mu_neg - mu_pos) + |mu_pos|^2 - |mu_neg|^2``, which
        does not overflow for extreme e.

        Parameters
        ----------
        env : torch.Tensor, shape (B, env_dim)
        proto : torch.Tensor, shape (2, env_dim) or (B, 2, env_dim)
            [negative mean, positive mean], one for all pairs or one per pair.

        Returns
        -------
        torch.Tensor, shape (B,); identically 0 when ``use_re`` is false.
        """
        if not self.cfg.use_re:
            return env.new_zeros(env.shape[0])
        proto = torch.as_tensor(proto).to(env)
        mu_neg, mu_pos = proto[..., 0, :], proto[..., 1, :]
        diff = 2.0 * (env * (mu_neg - mu_pos)).sum(-1)
        diff = diff + mu_pos.pow(2).sum(-1) - mu_neg.pow(2).sum(-1)
        x = self.re_scale() * diff / self.cfg.env_dim
        x = torch.nan_to_num(x, nan=0.0)
        return self.cfg.re_bound * torch.tanh(x)

    # -------------------------------------------------------------- forward
    def forward(
        self,
        enh: torch.Tensor,
        pro: torch.Tensor,
        log_dist: torch.Tensor,
        proto: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Score pairs end to end.

        Parameters
        ----------
        enh : torch.Tensor, shape (B, Le)
            Enhancer base codes.
        pro : torch.Tensor, shape (B, Lp)
            Promoter base codes.
        log_dist : torch.Tensor, shape (B,)
        proto : torch.Tensor, shape (2, env_dim) or (B, 2, env_dim), optional
            Cell prototype; None uses :attr:`population_prototype`.

        Returns
        -------
        dict
            ``logit`` (B,) = (u_i - r_e) / T, ``u_i`` (B,), ``r_e`` (B,), ``env``
            (B, env_dim), ``ui_feat`` (B, d_model).
        """
        out = self.pair_features(self.encode_enhancers(enh), self.encode_promoters(pro), log_dist)
        return self.score(out, proto)
