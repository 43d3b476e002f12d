"""Motif-grounded PRISM: U_I and R_E built on known TF motifs (the default ``prism``).

P(y=1 | x, c) = sigmoid((U_I(x) - R_E(x; c)) / T), with

* **Scan** (:class:`MotifScanner`): each window is scanned with M position weight matrices
  (log-odds, both strands, max over strands), initialised from a motif set (JASPAR by
  default) and frozen or fine-tuned, beside F free filters learned from scratch. Per motif
  and per ring of distance from the window centre (``motif_bins`` rings), the scan keeps
  hit counts at several relative-score levels (four with the default ``motif_sites =
  "consensus+cores"``, six with ``"levels+cores"``), counts of matches to the matrix's
  IUPAC consensus with at most 0, 1 or 2 mismatches and to the consensus of its most
  informative 8, 6 and 5 bp cores (:mod:`epcli.model.motif_sites`), and the best relative
  score. Frozen scans are memoised per distinct window (bounded LRU), so training and
  prediction scan each unique window once per run.
* **Motif activity** z (per window, M * views + F values): per motif, a log-odds view
  (``log1p`` of the counts pooled with learned positional weights over the rings, shared
  by all motifs, one set per anchor side, and a learned per-motif mixture over the score
  levels: a soft hit threshold; ``levels+cores`` keeps one view per level instead) and one
  view per consensus site model and mismatch allowance (``log1p`` of the pooled consensus counts);
  each standardised with statistics of the training windows.
  A sparse fit picks, per motif, the site model that carries the signal: a blend of levels
  blurs a sharp one (measured in docs/benchmarks.md).
* **U_I** = b + w_E . z_E + w_P . z_P + sum_r (u_r . z_E)(v_r . z_P) + f(log distance): additive
  enhancer- and promoter-motif terms, a low-rank enhancer x promoter motif interaction
  (W = U^T V, cooperating TF pairs), and distance as a term of its own (a quadratic in log
  distance), so the sequence terms cannot silently become distance. An L1 penalty
  (:meth:`MotifPrismModel.regularization`) keeps a handful of motifs carrying a prediction.
* **R_E**: environment features e(x) = g * z_E, with 0/1 per-motif gates g (the 32 motifs
  whose effect differs most between training cells, chosen by the warm start), so that a
  cell prototype is a direction Delta over TFs:
  ``R_E = re_bound * tanh(s * (|e - mu_pos|^2 - |e - mu_neg|^2) / 2)`` with
  ``mu_pos - mu_neg = Delta``. Delta is fitted to the support pairs with U_I as offset and
  a prior learnt from the training cells' differences (:mod:`epcli.model.motif_adapt`).
* **T**: a temperature bounded in ``[t_min, t_max]``.

Every score decomposes into named parts (:meth:`MotifPrismModel.contributions`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from epcli.core.schema import AUTO_MOTIF_SITES
from epcli.model.config import ModelConfig
from epcli.model.encoder import as_codes
from epcli.model.motif_activity import MotifActivity
from epcli.model.motif_adapt import direction_prototype, fit_direction
from epcli.model.motif_scan import MotifScanner
from epcli.model.motif_sites import DEFAULT_SITES, scan_plan
from epcli.model.prism import PrototypeMixin, init_prototype_params
from epcli.motifs.pwm import DEFAULT_BACKGROUND

#: Centre of the distance term: log10(1 + d/1000) = 2 at d ~ 100 kb.
LOG_DIST_CENTRE = 2.0


class MotifPrismModel(PrototypeMixin, nn.Module):
    """Motif-grounded EPI model ``logit = (U_I - R_E) / T`` (see the module docstring).

    Same interface as :class:`~epcli.model.prism.PrismModel`: ``encode_enhancers``,
    ``encode_promoters``, ``pair_features``, ``make_prototype``, ``r_e``, ``temperature``,
    ``forward``, ``score`` and the ``population_prototype`` buffer. Tokens are the standardised
    motif activities, shape (N, M * views + F) (written (N, M + F) below: one column per
    feature).

    Parameters
    ----------
    cfg : ModelConfig
        ``kind == "prism"``; ``cfg.motif_ids`` gives M and ``cfg.motif_width`` K.
    """

    #: Training episodes score their queries with the population prototype. A cell's R_E
    #: is fitted to its support set, not learned, so per-episode prototypes train nothing
    #: that adapting uses (the warm start chooses the fit's prior by simulated episodes);
    #: measured on the development set they moved no unseen-cell AUPR by more than 0.001
    #: and cost 3% of training throughput.
    episode_prototype = "population"

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.motif_sites == AUTO_MOTIF_SITES:  # training chooses; built directly: the first
            cfg = dataclasses.replace(cfg, motif_sites=DEFAULT_SITES)
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
            sites=cfg.motif_sites,
        )
        layout = self.scanner.layout
        self.act_e = MotifActivity(m, self.scanner.n_free, cfg.motif_bins, layout)
        self.act_p = MotifActivity(m, self.scanner.n_free, cfg.motif_bins, layout)
        nf = self.act_e.n_out
        self.bias = nn.Parameter(torch.zeros(()))
        self.w_e = nn.Parameter(torch.zeros(nf))
        self.w_p = nn.Parameter(torch.zeros(nf))
        r = cfg.interaction_rank
        self.u = nn.Parameter(torch.randn(r, nf) * 0.02)
        self.v = nn.Parameter(torch.randn(r, nf) * 0.02)
        self.dist = nn.Parameter(torch.zeros(2))
        # 0/1 gates of e(x) and the prior of a cell's direction (set by the warm start):
        # motif_sd (M + F,), how much each motif's effect varied between training cells;
        # re_prior_sd the prior SD of a new cell's coefficients in those units
        self.register_buffer("gate", torch.full((nf,), 0.1))
        self.register_buffer("motif_sd", torch.zeros(nf))
        self.register_buffer("re_prior_sd", torch.tensor(1.0))
        init_prototype_params(self, cfg, nf)
        self._plans: dict[str, torch.Tensor | None] = {}
        self._support: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.prune_scan = True
        self.register_load_state_dict_post_hook(lambda *_: self._plans.clear())
        self._register_load_state_dict_pre_hook(_one_site_model_weights)
        if not cfg.use_motif_prior:
            with torch.no_grad():
                self.scanner.weight.normal_(0.0, 1.0)

    # ---------------------------------------------------------------- set-up
    def set_motifs(
        self,
        weights: np.ndarray,
        lengths: np.ndarray,
        consensus: tuple[np.ndarray, np.ndarray] | None = None,
        background: tuple[float, ...] = DEFAULT_BACKGROUND,
    ) -> None:
        """Initialise the PWM layer from log-odds matrices (M, 4, K) and lengths (M,), and
        the consensus views from IUPAC matrices of each site model (allowed bases
        (S, M, 4, K), lengths (S, M); :func:`~epcli.model.motif_scan.site_matrices`;
        without them those views are 0). ``background``: the matrices' background (A C G
        T), for a site set whose levels are hit rates.

        Ignored (the layer keeps its random initialisation) when ``use_motif_prior`` is off.
        """
        if self.cfg.use_motif_prior:
            self.scanner.set_matrices(weights, lengths, consensus, background)
        else:
            with torch.no_grad():
                self.scanner.lengths.copy_(torch.as_tensor(lengths, dtype=torch.long))
            self.scanner.set_rate_levels(background)  # the random matrices' own

    @property
    def env_dim(self) -> int:
        """Width of e(x) and of prototypes: M * views + F."""
        return self.act_e.n_out

    def _device(self) -> torch.device:
        return self.w_e.device

    def scan_stats(
        self, codes: np.ndarray, batch: int = 16, plan: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scan statistics of windows (N, L) -> (N, M+F, N_STATS, B), without gradients;
        ``plan`` (M, n_scans) bool restricts the scans (those left out give 0)."""
        with torch.no_grad():
            parts = [
                self.scanner(as_codes(codes[a : a + batch], self._device()), plan)
                for a in range(0, len(codes), batch)
            ]
        return torch.cat(parts) if parts else torch.zeros(0)

    def rescan_levels(self, codes: np.ndarray, stats: torch.Tensor, layout) -> torch.Tensor:
        """:meth:`scan_stats` of windows that a model of another site set (``layout``) has
        scanned (its ``stats``, (N, M+F, n_stats', B)): where both sets count the same
        consensus models, only the log-odds scan runs and the consensus counts are copied
        (exactly what a full scan gives, in about a fifth of the time); otherwise a full scan.
        """
        mine = self.scanner.layout
        if tuple(mine.models) != tuple(layout.models):
            return self.scan_stats(codes)
        m = self.scanner.n_motifs
        plan = torch.zeros(m, mine.n_scans, dtype=torch.bool)
        plan[:, 0] = True
        out = self.scan_stats(codes, plan=plan)
        a, b, n = len(layout.levels), len(mine.levels), mine.n_counts
        out[:, :m, b : b + n] = stats[:, :m, a : a + n].to(out)
        # as a full scan, so that training reads these windows from the memo, not a rescan
        self.scanner.remember(as_codes(codes, self._device()), out[:, :m])
        return out

    def fit_normalization(self, enh_stats: torch.Tensor, pro_stats: torch.Tensor) -> None:
        """Standardise motif activities over the training windows' scan statistics."""
        self.act_e.set_normalization(enh_stats)
        self.act_p.set_normalization(pro_stats)

    # ---------------------------------------------------------------- encoders
    def encode_enhancers(self, codes: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Enhancer windows: codes (N, Le) -> motif activity z_E (N, M + F)."""
        return self.act_e(self.scanner(as_codes(codes, self._device()), self.side_plan("enhancer")))

    def encode_promoters(self, codes: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Promoter windows: codes (N, Lp) -> motif activity z_P (N, M + F)."""
        return self.act_p(self.scanner(as_codes(codes, self._device()), self.side_plan("promoter")))

    # ---------------------------------------------------------------- U_I
    def gates(self) -> torch.Tensor:
        """Non-negative per-motif gates g of e(x), shape (M + F,)."""
        return self.gate.clamp(min=0.0)

    def make_prototype(
        self, env: torch.Tensor, labels: torch.Tensor, u_i: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Prototype of a cell line from a labeled support set, shape (2, M + F).

        With ``u_i`` (U_I of the support pairs, shape (K,)): ``[e_bar - Delta/2, e_bar +
        Delta/2]``, Delta the cell's direction fitted with U_I as offset and the training
        cells' prior, centred on the population prototype's direction
        (:func:`~epcli.model.motif_adapt.fit_direction`); detached. Without it:
        class means of ``env`` (:meth:`PrototypeMixin.make_prototype`).
        """
        if u_i is None:
            return super().make_prototype(env, labels)
        delta, centre = fit_direction(
            env,
            labels,
            u_i,
            self.motif_sd,
            float(self.re_prior_sd),
            self.cfg.re_bound,
            float(self.re_scale().detach()),
            float(self.temperature().detach()),
            self.population_prototype[1] - self.population_prototype[0],
        )
        return direction_prototype(delta, centre)

    def distance_term(self, log_dist: torch.Tensor) -> torch.Tensor:
        """f(log distance), shape (B,); 0 when ``use_distance`` is off."""
        if not self.cfg.use_distance:
            return log_dist.new_zeros(log_dist.shape)
        c = log_dist - LOG_DIST_CENTRE
        return self.dist[0] * c + self.dist[1] * c * c

    def window_terms(self, tok: torch.Tensor, side: str) -> dict[str, torch.Tensor]:
        """The per-window parts of :meth:`pair_features` (a pair's terms are sums and
        products of its two windows' parts).

        Parameters
        ----------
        tok : torch.Tensor, shape (N, M + F)
            Motif activities of N windows of one side.
        side : {"enhancer", "promoter"}

        Returns
        -------
        dict
            ``add`` (N,): the additive term (z . w_E or z . w_P); ``fac`` (N, R): the
            interaction factors (z U^T or z V^T); enhancer windows also ``env`` (N, M + F)
            = g * z_E. Each row is a function of its own window only (products summed along
            the feature axis), whatever the other rows of the batch.
        """
        enh = side == "enhancer"
        w, f = (self.w_e, self.u) if enh else (self.w_p, self.v)
        out = {"env": tok * self.gates()} if enh else {}
        if not torch.is_grad_enabled():  # the used features only (the others' weights are 0)
            cols = self.used_features(side).nonzero().view(-1)
            tok, w, f = tok[:, cols], w[cols], f[:, cols]
        out["add"] = (tok * w).sum(-1)
        out["fac"] = (tok[:, None, :] * f[None]).sum(-1)
        return out

    def combine_terms(
        self, enh: dict[str, torch.Tensor], pro: dict[str, torch.Tensor], log_dist: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Pair features from the :meth:`window_terms` of each pair's two windows (rows
        aligned with the pairs; ``env`` may be absent); see :meth:`pair_features`."""
        ld = torch.as_tensor(log_dist).to(enh["add"]).reshape(-1)
        fe, fp = enh["fac"], pro["fac"]
        use = self.cfg.use_interaction
        inter = (fe * fp).sum(-1) if use else enh["add"].new_zeros(enh["add"].shape)
        u_i = self.bias + enh["add"] + pro["add"] + inter + self.distance_term(ld)
        ui_feat = torch.cat([fe, fp, enh["add"][:, None], pro["add"][:, None]], dim=1)
        return {"u_i": u_i, "env": enh.get("env"), "ui_feat": ui_feat}

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
        enh = self.window_terms(enh_tok, "enhancer")
        return self.combine_terms(enh, self.window_terms(pro_tok, "promoter"), log_dist)

    def interaction_matrix(self) -> torch.Tensor:
        """W = U^T V, shape (M + F, M + F): the E x P motif pair weights."""
        return self.u.T @ self.v

    def _sparse_params(self) -> list[torch.Tensor]:
        # not the R_E gates: the warm start sets them (0/1, at most GATE_MOTIFS of them), and
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

        Each sparse parameter is soft-thresholded by ``lr * sparsity / (sqrt(v_hat) + eps)``
        (``lr`` of its parameter group, or its ``l1_lr`` when set; ``sqrt(v_hat)`` at least
        ``sparsity``),
        the L1 step in Adam's own per-parameter metric (``v_hat``: its bias-corrected second
        moment), so a weight stays non-zero only while its gradient keeps outweighing the
        penalty. Weights become exactly 0, and unused motifs drop out of the model and of the
        scan at prediction time. Gates are kept non-negative.
        """
        lam = self.cfg.sparsity
        groups = {id(q): g for g in opt.param_groups for q in g["params"]}
        for p in self._sparse_params():
            st = opt.state.get(p, {})
            if lam <= 0 or "exp_avg_sq" not in st or id(p) not in groups:
                continue
            group = groups[id(p)]
            lr, (_, beta2), eps = group.get("l1_lr", group["lr"]), group["betas"], group["eps"]
            step = float(st["step"])
            vhat = st["exp_avg_sq"] / (1.0 - beta2**step)
            # at most lr per step, as far as an Adam step moves a weight: a vanishing
            # gradient (a warm start that already fits) must not zero every weight at once
            thr = lr * lam / (vhat.sqrt().clamp(min=lam) + eps)
            p.copy_(p.sign() * (p.abs() - thr).clamp(min=0.0))
        for p, keep in self._support:
            p.mul_(keep)
        self.gate.clamp_(min=0.0)
        self.forget_plans()

    def fix_support(self) -> None:
        """From now on keep at 0 every sparse weight that is 0 now (a relaxed lasso).

        The warm start's full-batch L1 path chooses which motifs carry U_I; the episodes
        then refit those weights only (:meth:`proximal_step` applies the mask). Without it,
        mini-batch gradient noise, larger than any useful penalty, revived hundreds of
        weights at negligible size (461 active motifs after the episodes against the warm
        start's 159 on the JASPAR rule of docs/benchmarks.md), each one a scan at prediction.
        """
        with torch.no_grad():
            self._support = [(p, p != 0) for p in self._sparse_params()]

    def used_features(self, side: str | None = None) -> torch.Tensor:
        """Activity features that a term reads (a non-zero weight, factor or gate).

        Parameters
        ----------
        side : {"enhancer", "promoter"}, optional
            The features of that anchor's activity (enhancer: w_E, U and the R_E gates;
            promoter: w_P and V); both sides' together when None.

        Returns
        -------
        torch.Tensor, shape (M * views + F,), bool
        """
        inter = self.cfg.use_interaction
        enh = (self.w_e != 0) | (self.gates() != 0)
        pro = self.w_p != 0
        if inter:
            enh = enh | (self.u != 0).any(0)
            pro = pro | (self.v != 0).any(0)
        return {"enhancer": enh, "promoter": pro, None: enh | pro}[side]

    def active_motifs(self) -> torch.Tensor:
        """Indices of the PWMs that any term uses (a non-zero weight, factor or gate).

        Returns
        -------
        torch.Tensor, shape (A,), int64
            Motifs outside it contribute exactly 0 to U_I and R_E, so they need no scan.
        """
        views = self.scanner.layout.views
        m = self.scanner.n_motifs * views
        return self.used_features()[:m].view(-1, views).any(1).nonzero().view(-1)

    def side_plan(self, side: str) -> torch.Tensor | None:
        """Scans an anchor side needs (:func:`~epcli.model.motif_sites.scan_plan`): all while
        training, the used ones otherwise (cached per side).

        ``prune_scan = False`` (set while a training run validates between epochs, when the
        used set still changes) scans everything, so memoised scans stay reusable.
        """
        if not self.prune_scan or self.training:
            return None
        if self.scanner.weight.requires_grad and torch.is_grad_enabled():
            return None
        if side not in self._plans:
            with torch.no_grad():
                plan = scan_plan(
                    self.used_features(side), self.scanner.n_motifs, self.scanner.layout
                ).cpu()
            self._plans[side] = None if bool(plan.all()) else plan
        return self._plans[side]

    def forget_plans(self) -> None:
        """Drop the cached scan plans (after weights, factors or gates were changed)."""
        self._plans.clear()

    def train(self, mode: bool = True) -> MotifPrismModel:
        """Switch mode (and forget the cached scan plans)."""
        self.forget_plans()
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
            (B, I, J): z_E[i] W[i, j] z_P[j] over the I enhancer and J promoter features with
            a non-zero row or column of W (``pair_rows`` (I,), ``pair_cols`` (J,): their
            indices; every other pair term is 0); ``distance`` (B,); ``bias`` (B,); ``r_e``
            (B,) and ``r_e_motif`` (B, M+F): the linear R_E part of each motif before the
            bounded tanh (``r_e`` is the exact total); ``u_i``, ``logit`` (B,).
        """
        ld = torch.as_tensor(log_dist).to(enh_tok).reshape(-1)
        ce = enh_tok * self.w_e
        cp = pro_tok * self.w_p
        wm = self.interaction_matrix() if self.cfg.use_interaction else enh_tok.new_zeros(0, 0)
        rows = (wm != 0).any(1).nonzero().view(-1)
        cols = (wm != 0).any(0).nonzero().view(-1)
        pair = enh_tok[:, rows, None] * wm[rows][:, cols][None] * pro_tok[:, None, cols]
        dist = self.distance_term(ld)
        f = self.pair_features(enh_tok, pro_tok, ld)
        out = self.score(f, proto)
        p = self.population_prototype if proto is None else torch.as_tensor(proto).to(enh_tok)
        r_motif = f["env"] * (p[..., 0, :] - p[..., 1, :])
        return {
            "enhancer": ce,
            "promoter": cp,
            "pair": pair,
            "pair_rows": rows,
            "pair_cols": cols,
            "distance": dist,
            "bias": self.bias.expand(ce.shape[0]),
            "r_e": out["r_e"],
            "r_e_motif": r_motif,
            "u_i": out["u_i"],
            "logit": out["logit"],
        }


def _one_site_model_weights(state_dict: dict, prefix: str, *_args) -> None:
    """Read weights saved before the scanner held one consensus per site model: their
    ``cons`` (M, 4, K) and ``cons_len`` (M,) are the single site model's (1, M, 4, K), (1, M)."""
    for name, dims in (("scanner.cons", 3), ("scanner.cons_len", 1)):
        v = state_dict.get(prefix + name)
        if v is not None and v.dim() == dims:
            state_dict[prefix + name] = v.unsqueeze(0)
