"""One optimizer step: a forward that runs every episode of the step in one call (so DDP sees
one forward per step), the loss per episode, and the update with the L1 proximal step."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from epcli.core.arrays import PairData
from epcli.core.schema import PROTOTYPE_KINDS
from epcli.model.losses import LossWeights, episode_loss, hsic
from epcli.model.prism import interaction_logit
from epcli.train.config import TrainConfig
from epcli.train.episodes import StepRows, batch_codes


class StepModule(nn.Module):
    """Runs a step's episodes in one forward (every distinct anchor window encoded once).

    Parameters
    ----------
    model : torch.nn.Module
        A PRISM or cross-attention model.
    kind : str
        Its model kind; kinds without prototypes return U_I as the logit.
    """

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.model = model
        self.kind = kind

    def forward(
        self,
        enh: torch.Tensor,
        enh_inv: torch.Tensor,
        pro: torch.Tensor,
        pro_inv: torch.Tensor,
        ld: torch.Tensor,
        labels: torch.Tensor,
        episode: torch.Tensor,
        is_support: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Windows (Ue, Le) / (Up, Lp) with each pair's row (B,), log distance (B,), labels,
        episode and support flags (B,) -> ``logit``, ``u_i``, ``r_e``, ``ui_feat`` of the
        query pairs (all pairs for kinds without prototypes)."""
        m = self.model
        # each distinct (anchor, orientation) of the step is encoded once
        tok_e = m.encode_enhancers(enh)[enh_inv]
        tok_p = m.encode_promoters(pro)[pro_inv]
        f = m.pair_features(tok_e, tok_p, ld)
        if self.kind not in PROTOTYPE_KINDS:
            return {"logit": f["u_i"], "u_i": f["u_i"], "ui_feat": f["ui_feat"]}
        env = f["env"]
        q = ~is_support
        n_ep = int(episode.max()) + 1
        if m.episode_prototype == "population":
            r_e = m.r_e(env[q], m.population_prototype)
        else:
            sup = [is_support & (episode == e) for e in range(n_ep)]
            protos = torch.stack([m.make_prototype(env[s], labels[s], f["u_i"][s]) for s in sup])
            r_e = m.r_e(env[q], protos[episode[q]])
        u = f["u_i"][q]
        return {
            "logit": interaction_logit(u, r_e, m.temperature()),
            "u_i": u,
            "r_e": r_e,
            "ui_feat": f["ui_feat"][q],
        }


def make_step_module(model: nn.Module, kind: str) -> StepModule:
    """The :class:`StepModule` of ``model``."""
    return StepModule(model, kind)


def step_loss(
    out: dict[str, torch.Tensor],
    labels: torch.Tensor,
    batch: StepRows,
    cells: np.ndarray,
    weights: LossWeights,
    episodic: bool,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The step's loss and its parts.

    Episodic: the mean over episodes of :func:`~epcli.model.losses.episode_loss` on each
    query, plus HSIC of U_I features against the queries' cells when weighted. Otherwise BCE.

    Parameters
    ----------
    out : dict
        :class:`StepModule` output (query pairs).
    labels : torch.Tensor, shape (B,), int64
        Labels of every pair of the step.
    batch : StepRows
    cells : np.ndarray, shape (B,)
        Cell index of every pair of the step.
    weights : LossWeights
    episodic : bool
    """
    is_sup = torch.from_numpy(batch.is_support).to(labels.device)
    yq = labels[~is_sup]
    if not episodic:
        loss = F.binary_cross_entropy_with_logits(out["logit"], yq.float())
        return loss, {"bce": float(loss.detach()), "total": float(loss.detach())}
    q_ep = torch.from_numpy(batch.episode.astype(np.int64)).to(labels.device)[~is_sup]
    no_hsic = dataclasses.replace(weights, hsic=0.0)
    losses, parts_list = [], []
    for i in range(batch.n_episodes):
        m = q_ep == i
        ep_loss, ep_parts = episode_loss({k: v[m] for k, v in out.items()}, yq[m], None, no_hsic)
        losses.append(ep_loss)
        parts_list.append(ep_parts)
    loss = torch.stack(losses).mean()
    parts = {k: float(np.mean([p[k] for p in parts_list])) for k in parts_list[0]}
    if weights.hsic > 0:
        _, inv = np.unique(cells[~batch.is_support], return_inverse=True)
        onehot = np.eye(int(inv.max()) + 1, dtype=np.float32)[inv.reshape(-1)]
        h = hsic(out["ui_feat"], torch.from_numpy(onehot).to(labels.device))
        loss = loss + weights.hsic * h
        parts["hsic"] = float(h.detach())
        parts["total"] = float(loss.detach())
    return loss, parts


def optimizer_step(
    model: nn.Module,
    ddp: nn.Module,
    opt: torch.optim.Optimizer,
    data: PairData,
    batch: StepRows,
    rng: np.random.Generator,
    cfg: TrainConfig,
    device: torch.device,
    use_amp: bool,
    episodic: bool,
) -> dict[str, Any]:
    """Forward, loss, backward, clip, update (and the L1 proximal step); the loss parts."""
    enh, enh_inv, pro, pro_inv, ld = batch_codes(data, batch.rows, rng, cfg.rc_aug)
    lab_t = torch.from_numpy(np.asarray(data.label)[batch.rows].astype(np.int64)).to(device)
    ep_t = torch.from_numpy(batch.episode.astype(np.int64)).to(device)
    sup_t = torch.from_numpy(batch.is_support).to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
        out = ddp(
            torch.from_numpy(enh).to(device),
            torch.from_numpy(enh_inv).to(device),
            torch.from_numpy(pro).to(device),
            torch.from_numpy(pro_inv).to(device),
            torch.from_numpy(ld).to(device),
            lab_t,
            ep_t,
            sup_t,
        )
    out = {k: v.float() for k, v in out.items()}
    cells = np.asarray(data.cell_idx)[batch.rows]
    loss, parts = step_loss(out, lab_t, batch, cells, cfg.loss_weights(), episodic)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    if hasattr(model, "proximal_step"):  # L1 sparsity as exact zeros
        model.proximal_step(opt)
        parts["l1"] = float(model.regularization().detach())
    return parts
