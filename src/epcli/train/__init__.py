"""Training: configuration, honest splits, episodes, validation, the loop, the model card.

The flow of :func:`~epcli.train.run.train`:

1. :func:`~epcli.train.split.check_inputs` - labels present, both classes (before any work).
2. :func:`~epcli.train.split.make_split` - hold out validation cells AND a genome region
   (whole chromosomes, or contiguous blocks of each chromosome when the data spans fewer
   than three).
3. :func:`~epcli.train.split.check_training_rows` - every training cell can form an episode.
4. The loop (:mod:`epcli.train.loop`). ``prism``: each optimizer step runs
   ``cells_per_step`` episodes (:mod:`epcli.train.episodes`); an episode draws one training
   cell, a stratified support set of ``support_size`` labeled pairs and a disjoint query
   batch from that cell; R_E comes from the support prototype; the loss is taken on the
   query (:mod:`epcli.train.step`). ``crossattn``: plain BCE batches. ``motif-lr`` /
   ``kmer`` / ``distance``: one scikit-learn fit (:mod:`epcli.train.sklearn`).
5. Validation every epoch on each validation set and cell (:mod:`epcli.train.validate`):
   zero-shot AUPR (population prototype) and adapted AUPR (prototype from ``support_size``
   labeled pairs of the cell). Early stopping on the mean zero-shot AUPR over every
   validation cell of both sets (the held-out cells and the held-out region's cells).
6. The model card (:mod:`epcli.train.card`): components, measured contributions, validation,
   collapse check; the model directory is written atomically by :mod:`epcli.io.modeldir`.

Determinism: the same seed and data give the same weights (per-epoch seeds, a numpy
``Generator`` for every sampling step, deterministic torch algorithms where available).
"""

from epcli.train.config import VAL_CELLS, VAL_REGION, TrainConfig
from epcli.train.episodes import Episode, EpisodeSampler
from epcli.train.result import TrainResult
from epcli.train.run import train
from epcli.train.split import Split, check_inputs, check_training_rows, make_split
from epcli.train.validate import compute_cell_prototypes

__all__ = [
    "VAL_CELLS",
    "VAL_REGION",
    "Episode",
    "EpisodeSampler",
    "Split",
    "TrainConfig",
    "TrainResult",
    "check_inputs",
    "check_training_rows",
    "compute_cell_prototypes",
    "make_split",
    "train",
]
