"""Temperature calibration of a cell's scores on its labeled support pairs."""

from __future__ import annotations

import numpy as np


def calibrate_temperature(
    margin: np.ndarray, y: np.ndarray, t_min: float = 0.25, t_max: float = 4.0
) -> float:
    """Temperature T in ``[t_min, t_max]`` minimising the BCE of ``sigmoid(margin / T)``.

    Parameters
    ----------
    margin : np.ndarray, shape (n,)
        Logit numerators, ``U_I - R_E`` (a baseline's logit).
    y : np.ndarray, shape (n,)
        Labels 0/1.

    Returns
    -------
    float
        The best of 401 log-spaced candidates (deterministic; bounded, so a perfectly
        separated support set cannot drive T to zero).
    """
    m = np.asarray(margin, dtype=np.float64)[None, :]
    sign = np.where(np.asarray(y) == 1, 1.0, -1.0)[None, :]
    grid = np.geomspace(t_min, t_max, 401)[:, None]
    bce = np.logaddexp(0.0, -sign * m / grid).mean(axis=1)
    return float(grid[int(np.argmin(bce)), 0])
