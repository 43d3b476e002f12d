"""``motif-lr``: sparse logistic regression on JASPAR motif scores of both windows.

The anchor the motif-grounded PRISM has to beat. Features of a pair: for every motif, the
best relative PWM score (both strands) in the enhancer window and in the promoter window,
and the log distance. An L1-penalised logistic regression selects a few of them; then the
products of the selected enhancer and promoter motifs (E x P pairs) are added and the L1 fit
is repeated. The penalty is chosen on a held-out genome block of the training pairs (the last
20% by enhancer position), never on validation cells.

Parameters are plain JSON: the selected motifs' count matrices travel with the weights, so
scoring scans only those motifs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from epcli.core.arrays import PairData, log_distance
from epcli.core.errors import EpcliError
from epcli.core.metrics import aupr
from epcli.motifs.pwm import Motif, MotifSet

#: Inverse L1 strengths tried (on the held-out block of the training pairs).
C_GRID = (0.003, 0.01, 0.03, 0.1)
#: Selected motifs per side whose products form the E x P pair features.
N_PAIR_MOTIFS = 16
#: Training pairs used to choose C (a seeded subset above it).
MAX_SEARCH_ROWS = 40_000


def motif_max_scores(ms: MotifSet, seqs: np.ndarray, batch: int = 64) -> np.ndarray:
    """Best relative score of each motif in each window (both strands).

    Parameters
    ----------
    ms : MotifSet
    seqs : np.ndarray, shape (N, L), uint8

    Returns
    -------
    np.ndarray, shape (N, M), float32
        ``max over sites of (s - s_min) / (s_max - s_min)``.
    """
    import torch

    from epcli.model.motif_scan import MotifScanner

    w, lengths, _ = ms.log_odds_tensor()
    sc = MotifScanner(len(ms), w.shape[2], 1, 0, 1, finetune=False, cache_bytes=0)
    sc.set_matrices(w, lengths)
    out = np.zeros((len(seqs), len(ms)), np.float32)
    with torch.no_grad():
        for a in range(0, len(seqs), batch):
            st = sc(torch.as_tensor(np.asarray(seqs[a : a + batch])).long())
            out[a : a + batch] = st[:, : len(ms), -1, 0].numpy()  # best score, ring 0
    return out


class MotifLRBaseline:
    """Sparse logistic regression on motif max-scores (+ selected E x P products) + distance.

    Parameters
    ----------
    motifs : MotifSet
        Motifs scanned when fitting (only the selected ones are kept).
    seed : int
    """

    kind = "motif-lr"

    def __init__(self, motifs: MotifSet, seed: int = 0) -> None:
        self.motifs = motifs
        self.seed = int(seed)
        self.pairs_: list[tuple[int, int]] = []  # (enhancer motif, promoter motif) products
        self.enh_: list[int] = []  # motif indices used on the enhancer side
        self.pro_: list[int] = []
        self.coef_: np.ndarray | None = None
        self.intercept_ = 0.0
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.C_: float | None = None

    # ---------------------------------------------------------------- features
    def _scores(self, data: PairData) -> tuple[np.ndarray, np.ndarray]:
        """Per-pair enhancer and promoter max-scores, shapes (n, M) each."""
        out = []
        for seqs, idx in ((data.enh_seqs, data.enh_idx), (data.pro_seqs, data.pro_idx)):
            uniq, inv = np.unique(np.asarray(idx, dtype=np.int64), return_inverse=True)
            out.append(motif_max_scores(self.motifs, seqs[uniq])[inv.reshape(-1)])
        return out[0], out[1]

    @staticmethod
    def _design(se: np.ndarray, sp: np.ndarray, ld: np.ndarray, enh, pro, pairs) -> np.ndarray:
        cols = [se[:, enh], sp[:, pro], ld[:, None]]
        if pairs:
            cols.append(np.stack([se[:, i] * sp[:, j] for i, j in pairs], axis=1))
        return np.concatenate(cols, axis=1).astype(np.float64)

    # ---------------------------------------------------------------- fit
    def fit(self, data: PairData, rows: np.ndarray | None = None) -> MotifLRBaseline:
        """Fit on labelled pairs ``rows`` (all when None).

        Raises
        ------
        EpcliError
            Labels other than 0/1, or one class only.
        """
        d = data if rows is None else data.subset(np.asarray(rows))
        y = np.asarray(d.label).astype(np.int64)
        if not np.isin(y, (0, 1)).all() or y.min() == y.max():
            raise EpcliError("motif-lr needs labels 0/1 of both classes")
        se, sp = self._scores(d)
        ld = log_distance(d.distance).astype(np.float64)
        m = len(self.motifs)
        allm = list(range(m))
        # choose C on a held-out genome block (last 20% of pairs by enhancer midpoint)
        order = np.argsort(np.asarray(d.enh_mid), kind="stable")
        cut = int(0.8 * y.size)
        tr, te = order[:cut], order[cut:]
        rng = np.random.default_rng(self.seed)
        if tr.size > MAX_SEARCH_ROWS:
            tr = np.sort(rng.choice(tr, MAX_SEARCH_ROWS, replace=False))
        x_all = self._design(se, sp, ld, allm, allm, [])
        best = (-1.0, C_GRID[0])
        for c in C_GRID:
            if np.unique(y[tr]).size < 2 or np.unique(y[te]).size < 2:
                break
            lr = self._lr(c).fit(*self._scaled(x_all[tr], y[tr]))
            a = aupr(y[te], lr.decision_function(self._apply(x_all[te])))
            if a > best[0]:
                best = (a, c)
        self.C_ = best[1]
        lr = self._lr(self.C_).fit(*self._scaled(x_all, y))
        coef = lr.coef_.ravel()
        ce, cp = coef[:m], coef[m : 2 * m]
        top_e = [int(i) for i in np.argsort(-np.abs(ce))[:N_PAIR_MOTIFS] if ce[i] != 0]
        top_p = [int(i) for i in np.argsort(-np.abs(cp))[:N_PAIR_MOTIFS] if cp[i] != 0]
        pairs = [(i, j) for i in top_e for j in top_p]
        x2 = self._design(se, sp, ld, allm, allm, pairs)
        lr = self._lr(self.C_).fit(*self._scaled(x2, y))
        coef = lr.coef_.ravel()
        # keep only what the fit uses
        keep_e = [i for i in allm if coef[i] != 0] + [i for i, _ in pairs]
        keep_p = [j for j in allm if coef[m + j] != 0] + [j for _, j in pairs]
        used = sorted(set(keep_e) | set(keep_p))
        pair_coef = coef[2 * m + 1 :]
        self.pairs_ = [p for p, c in zip(pairs, pair_coef, strict=True) if c != 0]
        enh = [i for i in allm if coef[i] != 0]
        pro = [j for j in allm if coef[m + j] != 0]
        cols = (
            enh
            + [m + j for j in pro]
            + [2 * m]
            + [2 * m + 1 + k for k, c in enumerate(pair_coef) if c != 0]
        )
        self.coef_ = coef[cols]
        self.intercept_ = float(lr.intercept_[0])
        self.mean_ = self._scaler.mean_[cols]
        self.scale_ = self._scaler.scale_[cols]
        # re-index onto the kept motifs
        pos = {old: new for new, old in enumerate(used)}
        self.motifs = self.motifs.subset([self.motifs.ids[i] for i in used])
        self.enh_ = [pos[i] for i in enh]
        self.pro_ = [pos[j] for j in pro]
        self.pairs_ = [(pos[i], pos[j]) for i, j in self.pairs_]
        return self

    def _lr(self, c: float) -> LogisticRegression:
        import sklearn

        major, minor = (int(x) for x in sklearn.__version__.split(".")[:2])
        # scikit-learn 1.8 spells an L1 penalty l1_ratio=1 and deprecates penalty=
        l1 = {"l1_ratio": 1.0} if (major, minor) >= (1, 8) else {"penalty": "l1"}
        return LogisticRegression(
            C=c, solver="liblinear", max_iter=500, random_state=self.seed, **l1
        )

    def _scaled(self, x: np.ndarray, y: np.ndarray):
        self._scaler = StandardScaler().fit(x)
        return self._scaler.transform(x), y

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return self._scaler.transform(x)

    # ---------------------------------------------------------------- score
    def logit(self, data: PairData, rows: np.ndarray | None = None) -> np.ndarray:
        """Log-odds of interaction, shape (n,), float64 (a row-wise sum: chunk-invariant)."""
        if self.coef_ is None:
            raise EpcliError("motif-lr baseline is not fitted", hint="call fit() first")
        d = data if rows is None else data.subset(np.asarray(rows))
        if len(self.motifs):
            se, sp = self._scores(d)
        else:
            se = sp = np.zeros((d.n_pairs, 0), np.float32)
        x = self._design(se, sp, log_distance(d.distance), self.enh_, self.pro_, self.pairs_)
        return (((x - self.mean_) / self.scale_) * self.coef_).sum(axis=1) + self.intercept_

    def top_terms(self, k: int = 20) -> list[dict[str, Any]]:
        """Terms with the largest standardised coefficients, largest first."""
        ids, names = self.motifs.ids, self.motifs.names
        labels = (
            [("enhancer", ids[i], names[i]) for i in self.enh_]
            + [("promoter", ids[j], names[j]) for j in self.pro_]
            + [("distance", "log_distance", "log distance")]
            + [("pair", f"{ids[i]}x{ids[j]}", f"{names[i]} x {names[j]}") for i, j in self.pairs_]
        )
        order = np.argsort(-np.abs(self.coef_))[:k]
        return [
            {
                "part": labels[i][0],
                "id": labels[i][1],
                "name": labels[i][2],
                "effect": float(self.coef_[i]),
            }
            for i in order
        ]

    # ---------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        """Parameters, with the kept motifs' count matrices, as a JSON-able dict."""
        if self.coef_ is None:
            raise EpcliError("motif-lr baseline is not fitted", hint="call fit() first")
        return {
            "kind": self.kind,
            "seed": self.seed,
            "C": self.C_,
            "motifs": [
                {"id": m.id, "name": m.name, "counts": np.asarray(m.counts).tolist()}
                for m in self.motifs.motifs
            ],
            "motif_source": {
                "source": self.motifs.source,
                "release": self.motifs.release,
                "collection": self.motifs.collection,
                "taxon": self.motifs.taxon,
                "path": self.motifs.path,
            },
            "background": list(self.motifs.background),
            "enhancer_motifs": self.enh_,
            "promoter_motifs": self.pro_,
            "pairs": [list(p) for p in self.pairs_],
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
            "scaler_mean": self.mean_.tolist(),
            "scaler_scale": self.scale_.tolist(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MotifLRBaseline:
        """Rebuild from :meth:`to_json` output.

        Raises
        ------
        EpcliError
            Malformed or inconsistent parameters.
        """
        try:
            src = d.get("motif_source", {})
            ms = MotifSet(
                [
                    Motif(m["id"], m["name"], np.asarray(m["counts"], np.float64))
                    for m in d["motifs"]
                ],
                src.get("source", "file"),
                src.get("release"),
                src.get("collection"),
                src.get("taxon"),
                src.get("path"),
                tuple(d.get("background", (0.295, 0.205, 0.205, 0.295))),
            )
            b = cls(ms, seed=int(d.get("seed", 0)))
            b.C_ = d.get("C")
            b.enh_ = [int(i) for i in d["enhancer_motifs"]]
            b.pro_ = [int(i) for i in d["promoter_motifs"]]
            b.pairs_ = [(int(i), int(j)) for i, j in d["pairs"]]
            b.coef_ = np.asarray(d["coef"], np.float64)
            b.intercept_ = float(d["intercept"])
            b.mean_ = np.asarray(d["scaler_mean"], np.float64)
            b.scale_ = np.asarray(d["scaler_scale"], np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise EpcliError(f"motif-lr baseline parameters are malformed: {exc}") from None
        n = len(b.enh_) + len(b.pro_) + 1 + len(b.pairs_)
        idx = b.enh_ + b.pro_ + [i for p in b.pairs_ for i in p]
        if not (b.coef_.shape == b.mean_.shape == b.scale_.shape == (n,)) or any(
            not 0 <= i < len(ms) for i in idx
        ):
            raise EpcliError("motif-lr baseline parameters are inconsistent")
        return b
