"""The one implementation of each scoring rule: AUPR, the best-F1 and recall thresholds, and
the collapse check. Everything that reports these (training's validation, ``adapt``'s
calibration, ``evaluate``'s table, ``predict``'s summary, the warm start) calls these
functions, so the same scores always get the same answer.

Conventions
-----------
* A pair is *called* positive when ``score >= threshold`` (scikit-learn's convention).
* AUPR is scikit-learn's :func:`~sklearn.metrics.average_precision_score` (step-wise, no
  trapezoids; tied scores form one step); NaN when the labels lack a class.
* Best-F1 threshold: the threshold of the precision-recall curve with the highest F1. **Ties
  go to the highest threshold** (the fewest pairs called at the same F1).
* Threshold at recall: the highest threshold whose recall still reaches the target.
* Collapse: see :func:`collapse_check`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

#: Scores whose standard deviation is below this are called collapsed (near-constant).
COLLAPSE_STD = 1e-3


def aupr(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (AUPR) of ``scores`` (n,) against 0/1 ``labels`` (n,).

    Returns NaN when there are no pairs or only one class.
    """
    y = np.asarray(labels)
    if y.size == 0 or y.min() == y.max():
        return float("nan")
    from sklearn.metrics import average_precision_score  # on use: ~1 s of every CLI start

    return float(average_precision_score(y, np.asarray(scores, dtype=np.float64)))


def nanmean(values: Iterable[float | None]) -> float:
    """Mean of the finite values (None and NaN left out); NaN when none is left."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


@dataclass
class F1Point:
    """The best-F1 point of a precision-recall curve."""

    threshold: float
    precision: float
    recall: float
    f1: float


def best_f1(labels: np.ndarray, scores: np.ndarray) -> F1Point:
    """The threshold with the highest F1 (ties: the highest threshold).

    Parameters
    ----------
    labels : np.ndarray, shape (n,)
        0/1, both classes present.
    scores : np.ndarray, shape (n,)

    Returns
    -------
    F1Point
    """
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(
        np.asarray(labels), np.asarray(scores, dtype=np.float64)
    )
    p, r = precision[:-1], recall[:-1]  # aligned with thresholds (increasing)
    denom = p + r
    f1 = np.divide(2 * p * r, denom, out=np.zeros_like(denom), where=denom > 0)
    best = len(f1) - 1 - int(np.argmax(f1[::-1]))  # ties: the highest threshold
    return F1Point(float(thresholds[best]), float(p[best]), float(r[best]), float(f1[best]))


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """Threshold (call 1 when ``score >= t``) that maximises F1; ties: the highest."""
    return best_f1(labels, scores).threshold


def recall_point(labels: np.ndarray, scores: np.ndarray, target: float) -> tuple[float, float]:
    """The highest threshold whose recall is at least ``target``, and its precision.

    Returns
    -------
    threshold, precision : float
    """
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(
        np.asarray(labels), np.asarray(scores, dtype=np.float64)
    )
    p, r = precision[:-1], recall[:-1]
    reach = np.nonzero(r >= target - 1e-12)[0]  # recall falls as the threshold rises
    at = int(reach[-1]) if reach.size else 0
    return float(thresholds[at]), float(p[at])


def threshold_at_recall(labels: np.ndarray, scores: np.ndarray, target: float) -> float:
    """The highest threshold whose recall is at least ``target`` (:func:`recall_point`)."""
    return recall_point(labels, scores, target)[0]


def near_constant(n: int, std: float) -> bool:
    """The near-constant rule: at least two scores and a standard deviation below
    :data:`COLLAPSE_STD` (usable on running sums, as ``predict`` keeps them)."""
    return n >= 2 and std < COLLAPSE_STD


@dataclass
class CollapseCheck:
    """Outcome of :func:`collapse_check` (``to_dict`` is what the model card records)."""

    collapsed: bool
    score_std: float
    fraction_predicted_positive: float
    single_class_at_0_5: bool
    aupr: float
    prevalence: float
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-able fields, in the model card's order."""
        return {
            "collapsed": self.collapsed,
            "score_std": self.score_std,
            "fraction_predicted_positive": self.fraction_predicted_positive,
            "single_class_at_0_5": self.single_class_at_0_5,
            "aupr": self.aupr,
            "prevalence": self.prevalence,
            "reasons": list(self.reasons),
        }


def _fmt(x: float) -> str:
    return "NA" if not np.isfinite(x) else f"{x:.3f}"


def collapse_check(scores: np.ndarray, labels: np.ndarray | None = None) -> CollapseCheck:
    """Is a model collapsed, judged from its scores (and labels when known)?

    Collapsed when

    1. the scores are near-constant (:func:`near_constant`: n >= 2, std < 1e-3), or
    2. with probabilities and labels: every pair falls in one class at threshold 0.5 AND the
       ranking is barely better than chance (AUPR below ``prevalence + 0.1 * (1 -
       prevalence)``; an undefined AUPR counts as chance).

    A one-class prediction alone is recorded (``single_class_at_0_5``) but is not a collapse:
    on imbalanced data a well-ranking model often puts every probability below 0.5, and
    ``epcli adapt`` calibrates the threshold.

    Parameters
    ----------
    scores : np.ndarray, shape (n,)
    labels : np.ndarray, shape (n,), optional
        0/1 labels of the same pairs; rule 2 applies only with them.
    """
    s = np.asarray(scores, dtype=np.float64)
    std = float(s.std()) if s.size else 0.0
    frac = float((s >= 0.5).mean()) if s.size else float("nan")
    single = bool(s.size and frac in (0.0, 1.0))
    known = labels is not None and len(labels) == s.size
    a = aupr(labels, s) if known else float("nan")
    prev = float((np.asarray(labels) == 1).mean()) if known and len(labels) else float("nan")
    reasons = []
    if near_constant(s.size, std):
        if np.unique(s).size <= 1:
            reasons.append(f"all {s.size} scores are equal ({s[0]:.6g})")
        else:
            reasons.append(f"scores are nearly constant (std {std:.2e} < {COLLAPSE_STD:g})")
    chance = not np.isfinite(a) or a < prev + 0.1 * (1 - prev)
    if known and single and chance:
        cls = "positive" if frac == 1.0 else "negative"
        reasons.append(
            f"every pair is predicted {cls} at threshold 0.5 and the ranking is near chance "
            f"(AUPR {_fmt(a)}, prevalence {_fmt(prev)})"
        )
    return CollapseCheck(bool(reasons), std, frac, single, a, prev, reasons)
