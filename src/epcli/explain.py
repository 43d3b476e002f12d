"""``epcli explain``: which TF motifs drive each pair's score.

The motif-grounded PRISM's U_I is a sum of named parts (an enhancer-motif term per motif, a
promoter-motif term per motif, an E x P motif-pair term per pair of motifs, a distance term
and a bias), so each pair's score can be read off exactly: this module lists, per pair, the
K parts with the largest absolute contribution, with the motif IDs and TF names, beside the
pair's U_I, distance term, R_E and logit.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from epcli.core import schema
from epcli.core.arrays import PairData, log_distance
from epcli.core.errors import UsageError

#: Columns of the explain table, in order.
EXPLAIN_COLUMNS: tuple[str, ...] = (
    "pair",
    "name",
    "cell",
    "chrom1",
    "start1",
    "end1",
    "chrom2",
    "start2",
    "end2",
    "rank",
    "part",
    "motif_id",
    "motif_name",
    "promoter_motif_id",
    "promoter_motif_name",
    "contribution",
    "u_i",
    "distance_term",
    "r_e",
    "logit",
)


def check_explainable(model) -> None:
    """Raise a :class:`UsageError` unless ``model`` is a motif-grounded PRISM."""
    if not hasattr(model, "contributions"):
        raise UsageError(
            "explain needs a motif-grounded prism model (its score is a sum of motif terms)",
            hint="train one with epcli train --model prism",
        )


def contribution_batches(
    model, data: PairData, proto: np.ndarray | None = None, batch: int = 64
) -> Iterator[tuple[int, dict]]:
    """:meth:`~epcli.model.motif.MotifPrismModel.contributions` of every pair, batch by batch
    (each distinct window of a batch encoded once), in pair order, with the model in eval
    mode and no gradients.

    Parameters
    ----------
    model : MotifPrismModel
    data : PairData
        ``n`` pairs.
    proto : np.ndarray, shape (2, M + F), optional
        Cell prototype for R_E and the logit; None: the population prototype.
    batch : int
        Pairs per batch.

    Yields
    ------
    (int, dict)
        The batch's first pair index and its contributions (tensors with a leading batch
        axis of up to ``batch`` pairs, as ``contributions`` returns them).
    """
    import torch

    check_explainable(model)
    enh_idx = np.asarray(data.enh_idx, np.int64)
    pro_idx = np.asarray(data.pro_idx, np.int64)
    ld_all = log_distance(data.distance)
    device = next(model.parameters()).device
    p = None if proto is None else torch.as_tensor(np.asarray(proto, np.float32), device=device)
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for a in range(0, data.n_pairs, batch):
                sl = slice(a, min(a + batch, data.n_pairs))
                ue, ie = np.unique(enh_idx[sl], return_inverse=True)
                up, ip = np.unique(pro_idx[sl], return_inverse=True)
                te = model.encode_enhancers(data.enh_seqs[ue])[torch.as_tensor(ie.reshape(-1))]
                tp = model.encode_promoters(data.pro_seqs[up])[torch.as_tensor(ip.reshape(-1))]
                ld = torch.as_tensor(ld_all[sl], device=device)
                yield a, model.contributions(te, tp, ld, p)
    finally:
        model.train(was)


def top_contributions(
    model, data: PairData, k: int, proto: np.ndarray | None = None, batch: int = 64
) -> Iterator[dict]:
    """The K largest parts of U_I of every pair, in pair order.

    Parameters
    ----------
    model : MotifPrismModel
    data : PairData
        ``n`` pairs.
    k : int
        Parts per pair (enhancer motifs, promoter motifs, E x P motif pairs, distance).
    proto : np.ndarray, shape (2, M + F), optional
        Cell prototype for R_E and the logit; None: the population prototype.

    Yields
    ------
    dict
        One per (pair, rank): ``pair`` (index in ``data``), ``rank`` (1 = largest),
        ``part``, ``motif_id``, ``motif_name``, ``promoter_motif_id``,
        ``promoter_motif_name`` (E x P pairs), ``contribution`` (logit units before the
        temperature, i.e. of U_I), ``u_i``, ``distance_term``, ``r_e``, ``logit``.
    """
    import torch

    from epcli.model.motif_read import model_feature_names

    check_explainable(model)
    ids, names = model_feature_names(model)
    for a, c in contribution_batches(model, data, proto, batch):
        nf = c["enhancer"].shape[1]
        pair, rows_e, cols_p = c["pair"], c["pair_rows"], c["pair_cols"]
        cand = torch.cat(
            [c["enhancer"], c["promoter"], pair.flatten(1), c["distance"][:, None]], dim=1
        )
        kk = min(k, cand.shape[1])
        top = cand.abs().topk(kk, dim=1)
        vals = cand.gather(1, top.indices).cpu().numpy()
        idx = top.indices.cpu().numpy()
        for b in range(vals.shape[0]):
            base = {
                "pair": a + b,
                "u_i": float(c["u_i"][b]),
                "distance_term": float(c["distance"][b]),
                "r_e": float(c["r_e"][b]),
                "logit": float(c["logit"][b]),
            }
            for r in range(kk):
                if vals[b, r] == 0:
                    break
                yield {
                    **base,
                    "rank": r + 1,
                    "contribution": float(vals[b, r]),
                    **_describe(int(idx[b, r]), nf, rows_e, cols_p, ids, names),
                }


def _describe(j: int, nf: int, rows_e, cols_p, ids, names) -> dict:
    """Name of candidate column ``j`` of :func:`top_contributions`' candidate matrix."""
    none = {"promoter_motif_id": "", "promoter_motif_name": ""}
    if j < nf:
        return {"part": "enhancer", "motif_id": ids[j], "motif_name": names[j], **none}
    if j < 2 * nf:
        i = j - nf
        return {"part": "promoter", "motif_id": ids[i], "motif_name": names[i], **none}
    j -= 2 * nf
    n_cols = int(cols_p.numel())
    if j < int(rows_e.numel()) * n_cols:
        i, q = int(rows_e[j // n_cols]), int(cols_p[j % n_cols])
        return {
            "part": "pair",
            "motif_id": ids[i],
            "motif_name": names[i],
            "promoter_motif_id": ids[q],
            "promoter_motif_name": names[q],
        }
    return {"part": "distance", "motif_id": "", "motif_name": "", **none}


def explain_frame(
    model, frame: pd.DataFrame, data: PairData, k: int, proto: np.ndarray | None = None
) -> pd.DataFrame:
    """The explain table of one chunk of input rows.

    Parameters
    ----------
    frame : pandas.DataFrame
        The chunk's BEDPE rows (``frame.attrs["row_offset"]``: index of its first row in the
        input, used for the ``pair`` column).
    data : PairData
        The same pairs.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EXPLAIN_COLUMNS`.
    """
    rows = list(top_contributions(model, data, k, proto))
    out = pd.DataFrame(rows, columns=[c for c in EXPLAIN_COLUMNS if c not in _FRAME_COLS])
    if out.empty:
        return pd.DataFrame(columns=list(EXPLAIN_COLUMNS))
    src = frame.iloc[out["pair"].to_numpy()].reset_index(drop=True)
    for col in _FRAME_COLS:
        if col == "name":
            out[col] = src[col].to_numpy() if col in src else "."
        elif col == "cell":
            out[col] = src[schema.COL_CELL].to_numpy() if schema.COL_CELL in src else "."
        else:
            out[col] = src[col].to_numpy()
    out["pair"] = out["pair"] + int(frame.attrs.get("row_offset", 0))
    return out[list(EXPLAIN_COLUMNS)]


_FRAME_COLS = ("name", "cell", "chrom1", "start1", "end1", "chrom2", "start2", "end2")
