"""Model kind -> torch architecture (one file per architecture), and the builder."""

from __future__ import annotations

import torch

from epcli.model.config import ModelConfig
from epcli.model.crossattn import CrossAttnModel
from epcli.model.motif import MotifPrismModel
from epcli.model.prism import PrismModel

#: The torch architecture of each torch kind (:data:`epcli.core.schema.TORCH_KINDS`).
ARCHITECTURES: dict[str, type[torch.nn.Module]] = {
    "prism": MotifPrismModel,
    "prism-scratch": PrismModel,
    "crossattn": CrossAttnModel,
}


def build_model(cfg: ModelConfig, seed: int | None = None):
    """Build the torch model a config describes.

    Parameters
    ----------
    cfg : ModelConfig
        ``cfg.kind`` picks :class:`~epcli.model.motif.MotifPrismModel` (``prism``; its PWM
        layer is zero until :meth:`~epcli.model.motif.MotifPrismModel.set_motifs` or a state
        dict fills it), :class:`~epcli.model.prism.PrismModel` (``prism-scratch``) or
        :class:`~epcli.model.crossattn.CrossAttnModel`.
    seed : int, optional
        Seed of the weight initialisation; the global torch RNG is left untouched when given.

    Returns
    -------
    torch.nn.Module
    """
    cls = ARCHITECTURES[cfg.kind]
    if seed is None:
        return cls(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return cls(cfg)
