"""Torch EPI models and scikit-learn baselines (no files, no devices, no terminal).

See ``docs/architecture.md`` for the interface every torch model implements. Names are
imported lazily, so ``from epcli.model.config import ModelConfig`` does not load torch or
scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "DistanceBaseline": "baselines",
    "KmerBaseline": "baselines",
    "baseline_from_json": "baselines",
    "canonical_kmers": "baselines",
    "kmer_counts": "baselines",
    "ModelConfig": "config",
    "build_model": "registry",
    "CrossAttnModel": "crossattn",
    "SequenceEncoder": "encoder",
    "reverse_complement": "encoder",
    "LossWeights": "losses",
    "aux_ui_loss": "losses",
    "bce_loss": "losses",
    "episode_loss": "losses",
    "hsic": "losses",
    "ranking_loss": "losses",
    "PrismModel": "prism",
}

__all__ = [
    "CrossAttnModel",
    "DistanceBaseline",
    "KmerBaseline",
    "LossWeights",
    "ModelConfig",
    "PrismModel",
    "SequenceEncoder",
    "aux_ui_loss",
    "baseline_from_json",
    "bce_loss",
    "build_model",
    "canonical_kmers",
    "episode_loss",
    "hsic",
    "kmer_counts",
    "ranking_loss",
    "reverse_complement",
]

if TYPE_CHECKING:  # pragma: no cover
    from epcli.model.baselines import (
        DistanceBaseline,
        KmerBaseline,
        baseline_from_json,
        canonical_kmers,
        kmer_counts,
    )
    from epcli.model.config import ModelConfig
    from epcli.model.crossattn import CrossAttnModel
    from epcli.model.encoder import SequenceEncoder, reverse_complement
    from epcli.model.losses import (
        LossWeights,
        aux_ui_loss,
        bce_loss,
        episode_loss,
        hsic,
        ranking_loss,
    )
    from epcli.model.prism import PrismModel
    from epcli.model.registry import build_model


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'epcli.model' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"epcli.model.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
