"""The encode-once inference engine: every unique anchor window encoded once (in batches, through
the cross-chunk cache when given), then the pair-level part on fixed-shape batches, so scores do
not depend on chunking or sharding."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from epcli.core.arrays import PairData, log_distance
from epcli.model.prism import interaction_logit

#: Upper bound (bytes) of the anchor-token cache; above it pairs are scored in chunks grouped
#: by enhancer (each enhancer is still encoded once; a promoter may be encoded once per chunk).
DEFAULT_CACHE_BYTES = 2 * 1024**3


#: Rows per R_E batch when scoring (a fixed shape keeps scores independent of chunking).
R_E_BATCH = 1024


Progress = Callable[[int, int], None]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function, float64."""
    x = np.asarray(x, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def _chunks_by_enhancer(
    enh_idx: np.ndarray, bytes_enh: int, bytes_pro: int, budget: int
) -> list[np.ndarray]:
    """Split pair rows into chunks whose anchor tokens fit ``budget`` bytes.

    All pairs of one enhancer stay in one chunk, so each enhancer is encoded exactly once;
    the promoter cost is bounded by one promoter per pair.
    """
    n = enh_idx.shape[0]
    uniq_e = np.unique(enh_idx).shape[0]
    if uniq_e * bytes_enh + n * bytes_pro <= budget or n == 0:
        return [np.arange(n)]
    order = np.argsort(enh_idx, kind="stable")
    sorted_e = enh_idx[order]
    starts = np.flatnonzero(np.r_[True, sorted_e[1:] != sorted_e[:-1]])
    ends = np.r_[starts[1:], n]
    chunks: list[np.ndarray] = []
    a = 0
    cost = 0
    for s, e in zip(starts, ends, strict=True):
        c = bytes_enh + (e - s) * bytes_pro
        if cost and cost + c > budget:
            chunks.append(order[a:s])
            a, cost = s, 0
        cost += c
    chunks.append(order[a:])
    return chunks


def aligned_batches(n: int, batch_size: int, offset: int = 0):
    """Fixed-shape batches of ``n`` consecutive rows whose slots follow the global row index.

    Row ``i`` (global index ``offset + i``) always sits in slot ``(offset + i) % batch_size``
    of a ``batch_size``-row batch; free slots repeat a real row. BLAS kernels pick code paths
    by matrix shape and by a row's position in the block, so this makes a pair's score
    independent of how the input was chunked or sharded.

    Yields
    ------
    (index, keep) : (np.ndarray, np.ndarray)
        ``index`` (batch_size,) rows to gather (0..n-1); ``keep`` the slots holding real rows,
        in order.
    """
    i = 0
    while i < n:
        slot = (offset + i) % batch_size
        take = min(batch_size - slot, n - i)
        index = np.full(batch_size, i, dtype=np.int64)
        index[slot : slot + take] = np.arange(i, i + take)
        yield index, np.arange(slot, slot + take)
        i += take


class WindowRows:
    """A per-pair matrix stored once per window: row i is ``values[index[i]]``.

    The motif model's environment features depend on the enhancer window only, so a chunk's
    (pairs, M + F) matrix is kept as its unique enhancers' rows and an index. Slicing gives
    another :class:`WindowRows`; ``np.asarray`` the dense rows.

    Parameters
    ----------
    values : np.ndarray, shape (W, D)
    index : np.ndarray, shape (n,), int64
    """

    def __init__(self, values: np.ndarray, index: np.ndarray) -> None:
        self.values, self.index = values, np.asarray(index, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, int]:
        """(n, D)."""
        return (self.index.shape[0], self.values.shape[1])

    def __len__(self) -> int:
        return self.index.shape[0]

    def __getitem__(self, rows) -> WindowRows:
        return WindowRows(self.values, self.index[rows])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.values[self.index]
        return out if dtype is None else out.astype(dtype, copy=False)


def _encode_unique(encode, seqs: np.ndarray, idx: np.ndarray, batch_size: int, device):
    """Encode rows ``idx`` of ``seqs`` in batches; tokens (len(idx), T, d) on ``device``."""
    import torch

    parts = []
    for a in range(0, idx.shape[0], batch_size):
        rows = idx[a : a + batch_size]
        # fixed-shape batches (the last one padded by repeating rows): kernels chosen by
        # shape then give each anchor the same tokens however the input was chunked
        codes = torch.from_numpy(np.ascontiguousarray(seqs[np.resize(rows, batch_size)]))
        parts.append(encode(codes.to(device))[: rows.shape[0]])
    return torch.cat(parts, dim=0)


def _encode_cached(cache, tag: str, encode, seqs: np.ndarray, idx: np.ndarray, batch_size, device):
    """:func:`_encode_unique` through a cross-chunk :class:`~epcli.inference.cache.WindowCache`."""
    if cache is None:
        return _encode_unique(encode, seqs, idx, batch_size, device)
    from epcli.inference.cache import window_keys

    return cache.encode(
        window_keys(seqs[idx], tag),
        lambda rows: _encode_unique(encode, seqs, idx[rows], batch_size, device),
    )


def _encoded_groups(
    model, data: PairData, bytes_e: int, bytes_p: int, budget: int, batch_size: int, cache
):
    """Pair rows in groups by enhancer (:func:`_chunks_by_enhancer`) with their unique
    windows encoded once: yields ``rows``, ``tok_e``, ``tok_p`` (the unique windows'
    encodings) and ``inv_e``, ``inv_p`` (each row's window in them, tensors)."""
    import torch

    device = next(model.parameters()).device
    enh_idx = np.asarray(data.enh_idx, dtype=np.int64)
    pro_idx = np.asarray(data.pro_idx, dtype=np.int64)
    for rows in _chunks_by_enhancer(enh_idx, bytes_e, bytes_p, budget):
        ue, inv_e = np.unique(enh_idx[rows], return_inverse=True)
        up, inv_p = np.unique(pro_idx[rows], return_inverse=True)
        tok_e = _encode_cached(
            cache, "enhancer", model.encode_enhancers, data.enh_seqs, ue, batch_size, device
        )
        tok_p = _encode_cached(
            cache, "promoter", model.encode_promoters, data.pro_seqs, up, batch_size, device
        )
        inv_e_t = torch.from_numpy(inv_e.reshape(-1)).to(device)
        yield rows, tok_e, tok_p, inv_e_t, torch.from_numpy(inv_p.reshape(-1)).to(device)
        del tok_e, tok_p  # one group's encodings at a time (the caller drops its own)


def pair_features_unique(
    model,
    data: PairData,
    *,
    batch_size: int = 256,
    progress: Progress | None = None,
    zero_distance: bool = False,
    keep_ui_feat: bool = False,
    max_cache_bytes: int = DEFAULT_CACHE_BYTES,
    row_offset: int = 0,
    cache=None,
) -> dict[str, np.ndarray | None]:
    """Pair features of a torch model, encoding each unique anchor once.

    Parameters
    ----------
    model : PrismModel or CrossAttnModel
        Put in eval mode for the call (its mode is restored after).
    data : PairData
        ``n`` pairs.
    batch_size : int
        Anchors per encoder batch and pairs per pair batch.
    progress : callable, optional
        Called as ``progress(pairs_done, n)``.
    zero_distance : bool
        Feed a log distance of 0 to every pair (for the distance ablation of the model card).
    keep_ui_feat : bool
        Also return the features behind U_I.
    max_cache_bytes : int
        Bound of the token cache (see :data:`DEFAULT_CACHE_BYTES`).
    row_offset : int
        Global index of the first pair in the whole input (see :func:`aligned_batches`).
    cache : epcli.inference.cache.WindowCache, optional
        Cross-chunk cache of anchor tokens (keyed by the window's bases): windows already in
        it are not encoded again.

    Returns
    -------
    dict
        ``u_i`` (n,) float32; ``env`` (n, env_dim) float32 (a :class:`WindowRows` for a
        model with ``window_terms``, the motif prism) or None (no environment head);
        ``ui_feat`` (n, d) float32 or None.
    """
    import torch

    if hasattr(model, "window_terms"):
        return _window_pair_features(
            model, data, batch_size, progress, zero_distance, cache, max_cache_bytes
        )
    n = data.n_pairs
    device = next(model.parameters()).device
    cfg = model.cfg
    le, lp = data.enh_seqs.shape[1], data.pro_seqs.shape[1]
    bytes_e = cfg.n_tokens(le) * cfg.d_model * 4
    bytes_p = cfg.n_tokens(lp) * cfg.d_model * 4
    ld = np.zeros(n, np.float32) if zero_distance else log_distance(data.distance)
    u_i = np.zeros(n, np.float32)
    env: np.ndarray | None = None
    ui_feat: np.ndarray | None = None
    was_training = model.training
    model.eval()
    done = 0
    try:
        with torch.inference_mode():
            groups = _encoded_groups(
                model, data, bytes_e, bytes_p, max_cache_bytes, batch_size, cache
            )
            for rows, tok_e, tok_p, inv_e_t, inv_p_t in groups:
                ld_t = torch.from_numpy(ld[rows]).to(device)
                contiguous = rows.shape[0] == n  # one chunk in input order
                for index, keep in aligned_batches(
                    rows.shape[0], batch_size, row_offset if contiguous else 0
                ):
                    r = rows[index[keep]]
                    sl = torch.from_numpy(index).to(device)
                    keep_t = torch.from_numpy(keep).to(device)
                    out = model.pair_features(tok_e[inv_e_t[sl]], tok_p[inv_p_t[sl]], ld_t[sl])
                    out = {k: (None if v is None else v[keep_t]) for k, v in out.items()}
                    u_i[r] = out["u_i"].float().cpu().numpy()
                    if out.get("env") is not None:
                        if env is None:
                            env = np.zeros((n, out["env"].shape[1]), np.float32)
                        env[r] = out["env"].float().cpu().numpy()
                    if keep_ui_feat and out.get("ui_feat") is not None:
                        if ui_feat is None:
                            ui_feat = np.zeros((n, out["ui_feat"].shape[1]), np.float32)
                        ui_feat[r] = out["ui_feat"].float().cpu().numpy()
                    done += r.shape[0]
                    if progress is not None:
                        progress(done, n)
                del tok_e, tok_p
    finally:
        model.train(was_training)
    return {"u_i": u_i, "env": env, "ui_feat": ui_feat}


def _window_pair_features(
    model, data: PairData, batch_size: int, progress, zero_distance: bool, cache, budget: int
) -> dict[str, np.ndarray | WindowRows | None]:
    """:func:`pair_features_unique` for a model whose pair features are sums and products
    of per-window parts (the motif model's ``window_terms`` / ``combine_terms``): each unique
    window's parts are computed once, each pair combines its two windows' rows (elementwise,
    so a pair's values do not depend on chunking), and ``env`` is a :class:`WindowRows`
    (the pairs' environment rows are never materialised). Pairs are taken in groups by
    enhancer whose windows' activities fit ``budget`` bytes.
    """
    import torch

    n = data.n_pairs
    device = next(model.parameters()).device
    ld = np.zeros(n, np.float32) if zero_distance else log_distance(data.distance)
    u_i = np.zeros(n, np.float32)
    ui_feat: np.ndarray | None = None
    env_parts: list[np.ndarray] = []
    env_index = np.zeros(n, np.int64)
    width = model.env_dim * 4
    was_training = model.training
    model.eval()
    done = 0
    try:
        with torch.inference_mode():
            groups = _encoded_groups(model, data, width, width, budget, batch_size, cache)
            for rows, tok_e, tok_p, ie, ip in groups:
                te = model.window_terms(tok_e, "enhancer")
                tp = model.window_terms(tok_p, "promoter")
                del tok_e, tok_p
                out = model.combine_terms(
                    {k: te[k][ie] for k in ("add", "fac")},
                    {k: tp[k][ip] for k in ("add", "fac")},
                    torch.from_numpy(ld[rows]).to(device),
                )
                u_i[rows] = out["u_i"].float().cpu().numpy()
                if ui_feat is None:
                    ui_feat = np.zeros((n, out["ui_feat"].shape[1]), np.float32)
                ui_feat[rows] = out["ui_feat"].float().cpu().numpy()
                env_index[rows] = ie.cpu().numpy() + sum(e.shape[0] for e in env_parts)
                env_parts.append(te["env"].float().cpu().numpy())
                done += rows.shape[0]
                if progress is not None:
                    progress(done, n)
    finally:
        model.train(was_training)
    env = WindowRows(np.concatenate(env_parts), env_index) if env_parts else None
    return {"u_i": u_i, "env": env, "ui_feat": ui_feat}


def score_features(
    model, feats: dict[str, np.ndarray | None], proto: np.ndarray | None, row_offset: int = 0
) -> dict[str, np.ndarray]:
    """Logit, u_i, r_e of pairs from :func:`pair_features_unique` output and a prototype.

    Parameters
    ----------
    model : PrismModel or CrossAttnModel
    feats : dict
        ``u_i`` (n,), ``env`` (n, env_dim) or None.
    proto : np.ndarray, shape (2, env_dim), optional
        None uses the model's population prototype.

    Returns
    -------
    dict of str to np.ndarray, shape (n,), float64
        ``logit`` = (u_i - r_e) / T, ``u_i``, ``r_e``.
    """
    import torch

    u = np.asarray(feats["u_i"], dtype=np.float64)
    env = feats.get("env")
    temp = float(model.temperature().detach().float().cpu())
    if env is None:
        r_e = np.zeros_like(u)
    elif isinstance(env, WindowRows):  # R_E of each window once (row-wise: any batches)
        device = next(model.parameters()).device
        p = model.population_prototype if proto is None else np.asarray(proto, np.float32)
        p = torch.as_tensor(p).to(device)
        per_window = np.empty(env.values.shape[0], np.float64)
        with torch.inference_mode():
            for a in range(0, per_window.shape[0], R_E_BATCH):
                block = torch.from_numpy(env.values[a : a + R_E_BATCH]).to(device)
                per_window[a : a + R_E_BATCH] = model.r_e(block, p).double().cpu().numpy()
        r_e = per_window[env.index]
    else:
        device = next(model.parameters()).device
        p = (
            model.population_prototype
            if proto is None
            else torch.as_tensor(np.asarray(proto, dtype=np.float32), device=device)
        )
        env_t = torch.from_numpy(np.asarray(env, np.float32)).to(device)
        r_e = np.empty(env_t.shape[0], np.float64)
        with torch.inference_mode():
            # aligned fixed-shape batches: scores independent of chunking and sharding
            for index, keep in aligned_batches(env_t.shape[0], R_E_BATCH, row_offset):
                idx = torch.from_numpy(index).to(device)
                r = model.r_e(env_t[idx], p)[torch.from_numpy(keep).to(device)]
                r_e[index[keep]] = r.double().cpu().numpy()
    return {"logit": interaction_logit(u, r_e, temp), "u_i": u, "r_e": r_e}


def make_prototype_np(
    model, env: np.ndarray, labels: np.ndarray, u_i: np.ndarray | None = None
) -> np.ndarray | None:
    """``model.make_prototype`` on numpy input; (2, env_dim) float32, or None without env.

    ``u_i`` (K,): U_I of the support pairs (the motif prism's fit uses it as offset).
    """
    import torch

    if env is None:
        return None
    device = next(model.parameters()).device
    with torch.inference_mode():
        p = model.make_prototype(
            torch.from_numpy(np.asarray(env, np.float32)).to(device),
            torch.from_numpy(np.asarray(labels, np.int64)).to(device),
            None if u_i is None else torch.from_numpy(np.asarray(u_i, np.float32)).to(device),
        )
    return None if p is None else p.float().cpu().numpy()
