"""scikit-learn baselines: distance-only and k-mer logistic regressions.

Both take a :class:`~epcli.core.arrays.PairData`, are seeded, and serialise their parameters to
plain JSON (no pickle). Logits are computed from the stored parameters with numpy, so a
model read back with :meth:`from_json` scores exactly as the fitted one.
"""

from __future__ import annotations

from itertools import product
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from epcli.core.arrays import BASES, PairData, log_distance
from epcli.core.errors import EpcliError

_COMP = np.array([3, 2, 1, 0], dtype=np.int64)


# ---------------------------------------------------------------------------- k-mers
def canonical_kmers(k: int) -> list[str]:
    """Canonical k-mers (the smaller of a k-mer and its reverse complement, ACGT order).

    Returns
    -------
    list of str
        In increasing order of their base-4 index; the column order of :func:`kmer_counts`.
        Length ``(4**k + 4**(k//2)) / 2`` for even k, ``4**k / 2`` for odd k.
    """
    names = ["".join(p) for p in product(BASES[:4], repeat=k)]
    # The first k-mer of each column is the canonical one (it is the minimum of its class).
    first = np.unique(_canonical_table(k), return_index=True)[1]
    return [names[i] for i in first]


def _canonical_table(k: int) -> np.ndarray:
    """Map every k-mer index (base 4, first base most significant) to its canonical column.

    Returns
    -------
    np.ndarray, shape (4**k,), int64
    """
    idx = np.arange(4**k, dtype=np.int64)
    digits = (idx[:, None] // (4 ** np.arange(k - 1, -1, -1, dtype=np.int64))) % 4
    rc_digits = _COMP[digits[:, ::-1]]
    rc = rc_digits @ (4 ** np.arange(k - 1, -1, -1, dtype=np.int64))
    canon = np.minimum(idx, rc)
    _, col = np.unique(canon, return_inverse=True)
    return col.astype(np.int64)


def kmer_counts(seqs: np.ndarray, k: int, chunk: int = 512) -> np.ndarray:
    """Canonical (reverse-complement collapsed) k-mer counts of each window.

    Parameters
    ----------
    seqs : np.ndarray, shape (n, L), uint8
        Base codes 0..4; k-mers containing N (4) are skipped.
    k : int
    chunk : int
        Windows processed at once (bounds memory).

    Returns
    -------
    np.ndarray, shape (n, n_canonical), int64
        Columns in the order of :func:`canonical_kmers`.
    """
    seqs = np.asarray(seqs)
    n, length = seqs.shape
    table = _canonical_table(k)
    ncol = int(table.max()) + 1
    out = np.zeros((n, ncol), dtype=np.int64)
    m = length - k + 1
    if m <= 0 or n == 0:
        return out
    for a in range(0, n, chunk):
        s = seqs[a : a + chunk].astype(np.int64)
        b = s.shape[0]
        idx = np.zeros((b, m), dtype=np.int64)
        valid = np.ones((b, m), dtype=bool)
        for j in range(k):
            part = s[:, j : j + m]
            valid &= part < 4
            idx = idx * 4 + np.minimum(part, 3)
        flat = (np.arange(b, dtype=np.int64)[:, None] * ncol + table[idx])[valid]
        out[a : a + b] = np.bincount(flat, minlength=b * ncol).reshape(b, ncol)
    return out


def kmer_frequencies(seqs: np.ndarray, k: int) -> np.ndarray:
    """:func:`kmer_counts` divided by each window's number of valid k-mers, float64 (n, C)."""
    c = kmer_counts(seqs, k).astype(np.float64)
    return c / np.maximum(c.sum(1, keepdims=True), 1.0)


# ---------------------------------------------------------------------------- helpers
def _rows(data: PairData, rows: np.ndarray | None) -> PairData:
    return data if rows is None else data.subset(np.asarray(rows))


def _labels(data: PairData) -> np.ndarray:
    y = np.asarray(data.label).astype(np.int64)
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        raise EpcliError(
            f"baseline fit needs labels 0/1, but {int(bad.sum())} of {y.size} pairs have "
            f"other labels (e.g. {int(y[bad][0])})",
            hint="fit only on labelled pairs (pass rows=)",
        )
    if y.size == 0 or y.min() == y.max():
        raise EpcliError(
            "baseline fit needs both positive and negative pairs, "
            f"got {int((y == 1).sum())} positive and {int((y == 0).sum())} negative",
            hint="add pairs of the missing class",
        )
    return y


class _LinearBaseline:
    """Standardised features -> logistic regression, parameters kept as numpy arrays."""

    kind = ""

    def __init__(self, C: float = 1.0, seed: int = 0, max_iter: int = 2000) -> None:
        self.C = float(C)
        self.seed = int(seed)
        self.max_iter = int(max_iter)
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.coef_: np.ndarray | None = None
        self.intercept_: float | None = None

    def features(self, data: PairData) -> np.ndarray:  # pragma: no cover - abstract
        """Feature matrix (n_pairs, n_features)."""
        raise NotImplementedError

    def fit(self, data: PairData, rows: np.ndarray | None = None) -> _LinearBaseline:
        """Fit on pairs ``rows`` of ``data`` (all when None); labels must be 0/1, both present.

        Raises
        ------
        EpcliError
            When a label is not 0/1 or one class is absent.
        """
        d = _rows(data, rows)
        y = _labels(d)
        x = self.features(d)
        scaler = StandardScaler().fit(x)
        lr = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
        lr.fit(scaler.transform(x), y)
        self.mean_ = scaler.mean_.astype(np.float64)
        self.scale_ = scaler.scale_.astype(np.float64)
        self.coef_ = lr.coef_.ravel().astype(np.float64)
        self.intercept_ = float(lr.intercept_[0])
        return self

    def logit(self, data: PairData, rows: np.ndarray | None = None) -> np.ndarray:
        """Log-odds of interaction for pairs ``rows`` (all when None).

        Returns
        -------
        np.ndarray, shape (n,), float64
        """
        if self.coef_ is None:
            raise EpcliError(f"{self.kind} baseline is not fitted", hint="call fit() first")
        x = self.features(_rows(data, rows))
        # a row-wise sum, not a BLAS matrix-vector product: each pair's logit then does not
        # depend on which other pairs are scored with it (chunking, sharding)
        return (((x - self.mean_) / self.scale_) * self.coef_).sum(axis=1) + self.intercept_

    def _params_json(self) -> dict[str, Any]:
        if self.coef_ is None:
            raise EpcliError(f"{self.kind} baseline is not fitted", hint="call fit() first")
        return {
            "kind": self.kind,
            "C": self.C,
            "seed": self.seed,
            "max_iter": self.max_iter,
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
            "scaler_mean": self.mean_.tolist(),
            "scaler_scale": self.scale_.tolist(),
        }

    def _load_params(self, d: dict[str, Any]) -> None:
        try:
            self.coef_ = np.asarray(d["coef"], dtype=np.float64)
            self.intercept_ = float(d["intercept"])
            self.mean_ = np.asarray(d["scaler_mean"], dtype=np.float64)
            self.scale_ = np.asarray(d["scaler_scale"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise EpcliError(f"{self.kind} baseline parameters are malformed: {exc}") from None
        if not (self.coef_.shape == self.mean_.shape == self.scale_.shape):
            raise EpcliError(f"{self.kind} baseline parameters have inconsistent lengths")


def _check_kind(d: dict[str, Any], kind: str) -> None:
    if not isinstance(d, dict) or d.get("kind") != kind:
        got = d.get("kind") if isinstance(d, dict) else type(d).__name__
        raise EpcliError(f"expected parameters of a {kind!r} baseline, got {got!r}")


class DistanceBaseline(_LinearBaseline):
    """Logistic regression on the log distance alone (``arrays.log_distance``)."""

    kind = "distance"

    def features(self, data: PairData) -> np.ndarray:
        """Log distance, shape (n_pairs, 1), float64."""
        return log_distance(data.distance).astype(np.float64)[:, None]

    def to_json(self) -> dict[str, Any]:
        """Parameters as a JSON-able dict."""
        return self._params_json()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DistanceBaseline:
        """Rebuild from :meth:`to_json` output."""
        _check_kind(d, cls.kind)
        m = cls(C=d.get("C", 1.0), seed=d.get("seed", 0), max_iter=d.get("max_iter", 2000))
        m._load_params(d)
        if m.coef_.shape != (1,):
            raise EpcliError("distance baseline must have exactly one coefficient")
        return m


class KmerBaseline(_LinearBaseline):
    """Logistic regression on canonical k-mer frequencies of both windows + log distance.

    Features per pair: enhancer-window frequencies (n_canonical), promoter-window
    frequencies (n_canonical), log distance (1). Frequencies are computed once per unique
    anchor used by the requested pairs and gathered by the pair index arrays.

    Parameters
    ----------
    k : int
        k-mer length (1..8).
    C : float
        Inverse L2 regularisation strength.
    seed : int
        ``random_state`` of the logistic regression.
    """

    kind = "kmer"

    def __init__(self, k: int = 4, C: float = 1.0, seed: int = 0, max_iter: int = 2000) -> None:
        super().__init__(C=C, seed=seed, max_iter=max_iter)
        if not 1 <= int(k) <= 8:
            raise EpcliError(f"k-mer length must be in 1..8, got {k}")
        self.k = int(k)

    def features(self, data: PairData) -> np.ndarray:
        """Feature matrix, shape (n_pairs, 2 * n_canonical + 1), float64."""
        parts = []
        for seqs, idx in ((data.enh_seqs, data.enh_idx), (data.pro_seqs, data.pro_idx)):
            uniq, inv = np.unique(np.asarray(idx, dtype=np.int64), return_inverse=True)
            freq = kmer_frequencies(seqs[uniq], self.k)
            parts.append(freq[inv.reshape(-1)])
        parts.append(log_distance(data.distance).astype(np.float64)[:, None])
        return np.concatenate(parts, axis=1)

    def feature_names(self) -> list[str]:
        """Names of the feature columns: ``enh_<kmer>``, ``pro_<kmer>``, ``log_distance``."""
        km = canonical_kmers(self.k)
        return [f"enh_{s}" for s in km] + [f"pro_{s}" for s in km] + ["log_distance"]

    def to_json(self) -> dict[str, Any]:
        """Parameters (with ``k``) as a JSON-able dict."""
        return {**self._params_json(), "k": self.k}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> KmerBaseline:
        """Rebuild from :meth:`to_json` output."""
        _check_kind(d, cls.kind)
        m = cls(
            k=d.get("k", 4),
            C=d.get("C", 1.0),
            seed=d.get("seed", 0),
            max_iter=d.get("max_iter", 2000),
        )
        m._load_params(d)
        if m.coef_.shape != (len(m.feature_names()),):
            raise EpcliError(f"kmer baseline: {m.coef_.size} coefficients do not fit k={m.k}")
        return m


BASELINES = {"distance": DistanceBaseline, "kmer": KmerBaseline}


def baseline_from_json(d: dict[str, Any]):
    """Rebuild a baseline (distance, kmer, motif-lr) from its ``to_json`` output."""
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind == "motif-lr":
        from epcli.model.motif_lr import MotifLRBaseline

        return MotifLRBaseline.from_json(d)
    if kind not in BASELINES:
        raise EpcliError(
            f"unknown baseline kind {kind!r}", hint="one of " + ", ".join([*BASELINES, "motif-lr"])
        )
    return BASELINES[kind].from_json(d)
