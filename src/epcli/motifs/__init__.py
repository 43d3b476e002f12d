"""TF motif prior: position frequency matrices from JASPAR (offline, via pyjaspar's bundled
SQLite releases) or from a user's JASPAR / MEME file, as log-odds matrices for both strands.

This package knows nothing of models or devices; :mod:`epcli.model.motif` turns a
:class:`MotifSet` into the first layer of the motif-grounded encoder.
"""

from epcli.motifs.load import load_motifs
from epcli.motifs.pwm import (
    CORE_MIN_SPECIFIC,
    DEFAULT_BACKGROUND,
    DEFAULT_MOTIFS,
    Motif,
    MotifSet,
)

__all__ = [
    "CORE_MIN_SPECIFIC",
    "DEFAULT_BACKGROUND",
    "DEFAULT_MOTIFS",
    "Motif",
    "MotifSet",
    "load_motifs",
]
