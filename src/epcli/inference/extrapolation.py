"""Is a cell's prototype far from every training cell's? (a warning, not an error)"""

from __future__ import annotations

import numpy as np

from epcli.inference.predictor import Predictor
from epcli.io.prototype_file import Prototype


def prototype_distances(proto: Prototype, predictor: Predictor) -> dict[str, float]:
    """Euclidean distance of a prototype from each training cell's prototype.

    Parameters
    ----------
    proto : Prototype
    predictor : Predictor
        Its ``cell_prototypes`` (from ``cell_prototypes.json``) are the references.

    Returns
    -------
    dict of str to float
        ``{training cell: distance}`` over the flattened (2 * env_dim) prototypes; empty when
        either side has no prototype.
    """
    a = proto.array()
    if a is None or not predictor.cell_prototypes:
        return {}
    return {
        c: float(np.linalg.norm(a.ravel() - np.asarray(b, np.float32).ravel()))
        for c, b in predictor.cell_prototypes.items()
        if np.asarray(b).shape == a.shape
    }


def training_prototype_spread(predictor: Predictor) -> float | None:
    """Median pairwise distance between the training cells' prototypes (None below 2 cells)."""
    cells = list(predictor.cell_prototypes.values())
    if len(cells) < 2:
        return None
    d = [
        float(np.linalg.norm(np.ravel(cells[i]) - np.ravel(cells[j])))
        for i in range(len(cells))
        for j in range(i + 1, len(cells))
    ]
    return float(np.median(d))


def extrapolation_warning(
    proto: Prototype, predictor: Predictor, factor: float = 2.0
) -> str | None:
    """A warning when the prototype lies far from every training cell's prototype.

    Far means: nearest training-cell distance > ``factor`` x the median pairwise distance
    between training cells. Returns None when it is not far or cannot be judged.
    """
    dist = prototype_distances(proto, predictor)
    spread = training_prototype_spread(predictor)
    if not dist or spread is None or spread <= 0:
        return None
    cell, d = min(dist.items(), key=lambda kv: kv[1])
    if d <= factor * spread:
        return None
    return (
        f"prototype of {proto.cell!r} is far from every training cell (nearest {cell!r} at "
        f"{d:.3g}, {d / spread:.1f}x the typical distance between training cells {spread:.3g});"
        " predictions extrapolate beyond the training cells"
    )
