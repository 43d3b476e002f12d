"""Scoring with a trained model directory, and cell prototypes (``epcli adapt``).

:class:`Predictor` loads any model directory (prism, crossattn, kmer, distance) and scores a
:class:`~epcli.core.arrays.PairData`. For torch models every unique anchor window the pairs refer
to is encoded once, in batches; the pair-level part (cross-attention, heads) then runs on
batches of pairs that gather the cached tokens. A :class:`Prototype` (the JSON file of
``epcli adapt``) holds a cell line's prototype, bound to the model by its fingerprint, and
the decision thresholds calibrated on the support set.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import epcli
from epcli.core.arrays import PairData, log_distance
from epcli.core.errors import EpcliError, UsageError
from epcli.core.sampling import stratified_pick
from epcli.core.schema import SKLEARN_KINDS
from epcli.io.modeldir import LoadedModel, load_model_dir

PROTOTYPE_FORMAT = "epcli-prototype"
PROTOTYPE_VERSION = 1

#: Upper bound (bytes) of the anchor-token cache; above it pairs are scored in chunks grouped
#: by enhancer (each enhancer is still encoded once; a promoter may be encoded once per chunk).
DEFAULT_CACHE_BYTES = 2 * 1024**3
#: Rows per R_E batch when scoring (a fixed shape keeps scores independent of chunking).
R_E_BATCH = 1024

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------- device
def resolve_device(name: str | None = "auto"):
    """The torch device for a ``--device`` value.

    Parameters
    ----------
    name : {"auto", "cpu", "cuda", "cuda:N"}
        ``auto`` is CUDA when available, else CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    UsageError
        When CUDA is requested but not available (never a silent fallback), or the name is
        unknown.
    """
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(
                "--device cuda was requested but CUDA is not available on this machine",
                hint="use --device cpu or auto, or install a CUDA build of torch",
            )
        return torch.device(name)
    raise UsageError(f"unknown device {name!r}", hint="one of auto, cpu, cuda")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function, float64."""
    x = np.asarray(x, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


# ---------------------------------------------------------------------------- features
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
        ``u_i`` (n,) float32; ``env`` (n, env_dim) float32 or None (no environment head);
        ``ui_feat`` (n, d) float32 or None.
    """
    import torch

    n = data.n_pairs
    device = next(model.parameters()).device
    cfg = model.cfg
    le, lp = data.enh_seqs.shape[1], data.pro_seqs.shape[1]
    if hasattr(model, "scanner"):  # motif model: one activity per motif and window
        bytes_e = bytes_p = model.env_dim * 4
    else:
        bytes_e = cfg.n_tokens(le) * cfg.d_model * 4
        bytes_p = cfg.n_tokens(lp) * cfg.d_model * 4
    ld = np.zeros(n, np.float32) if zero_distance else log_distance(data.distance)
    enh_idx = np.asarray(data.enh_idx, dtype=np.int64)
    pro_idx = np.asarray(data.pro_idx, dtype=np.int64)
    u_i = np.zeros(n, np.float32)
    env: np.ndarray | None = None
    ui_feat: np.ndarray | None = None
    was_training = model.training
    model.eval()
    done = 0
    try:
        with torch.inference_mode():
            for rows in _chunks_by_enhancer(enh_idx, bytes_e, bytes_p, max_cache_bytes):
                ue, inv_e = np.unique(enh_idx[rows], return_inverse=True)
                up, inv_p = np.unique(pro_idx[rows], return_inverse=True)
                tok_e = _encode_cached(
                    cache, "enhancer", model.encode_enhancers, data.enh_seqs, ue, batch_size, device
                )
                tok_p = _encode_cached(
                    cache, "promoter", model.encode_promoters, data.pro_seqs, up, batch_size, device
                )
                inv_e_t = torch.from_numpy(inv_e.reshape(-1)).to(device)
                inv_p_t = torch.from_numpy(inv_p.reshape(-1)).to(device)
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
    return {"logit": (u - r_e) / temp, "u_i": u, "r_e": r_e}


def make_prototype_np(model, env: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """``model.make_prototype`` on numpy input; (2, env_dim) float32, or None without env."""
    import torch

    if env is None:
        return None
    device = next(model.parameters()).device
    with torch.inference_mode():
        p = model.make_prototype(
            torch.from_numpy(np.asarray(env, np.float32)).to(device),
            torch.from_numpy(np.asarray(labels, np.int64)).to(device),
        )
    return None if p is None else p.float().cpu().numpy()


# ---------------------------------------------------------------------------- thresholds
def best_f1_threshold(y: np.ndarray, prob: np.ndarray) -> float:
    """Probability threshold (predict 1 when ``prob >= t``) that maximises F1 on (y, prob)."""
    from sklearn.metrics import precision_recall_curve

    p, r, t = precision_recall_curve(np.asarray(y), np.asarray(prob, dtype=np.float64))
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0.0)[:-1]
    return float(t[int(np.argmax(f1))])


def threshold_at_recall(y: np.ndarray, prob: np.ndarray, target: float) -> float:
    """Largest threshold whose recall (``prob >= t``) is at least ``target``."""
    from sklearn.metrics import precision_recall_curve

    _, r, t = precision_recall_curve(np.asarray(y), np.asarray(prob, dtype=np.float64))
    ok = np.flatnonzero(r[:-1] >= target)
    return float(t[ok.max()]) if ok.size else float(t.min())


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


# ---------------------------------------------------------------------------- prototype
@dataclass
class Prototype:
    """A cell line's prototype and calibration, bound to one model (the prototype file).

    Attributes
    ----------
    model_fingerprint : str
        Fingerprint of the model it was built with.
    model_kind : str
    cell : str
    shots : int
        Labeled support pairs used.
    n_pos, n_neg : int
        Positives / negatives among them.
    prototype : list of list of float or None
        (2, env_dim) [negative mean, positive mean] of e(x); None for models without R_E.
    temperature : float or None
        Temperature calibrated on the support set (BCE-optimal within the model's bounds);
        used instead of the model's T when scoring with this prototype.
    threshold_best_f1 : float
        Probability threshold with the best F1 on the support set.
    threshold_at_recall : float
        Largest probability threshold reaching ``target_recall`` on the support set.
    target_recall : float
    epcli_version : str
    favoured_tfs, disfavoured_tfs : list of dict or None
        Motif models: the TFs whose motifs the prototype favours (lower resistance) and
        disfavours more than the training cells' average, ``{"id", "name", "weight"}``,
        largest first (:func:`epcli.model.motif.prototype_tfs`).
    """

    model_fingerprint: str
    model_kind: str
    cell: str
    shots: int
    n_pos: int
    n_neg: int
    prototype: list[list[float]] | None
    temperature: float | None
    threshold_best_f1: float
    threshold_at_recall: float
    target_recall: float
    epcli_version: str = epcli.__version__
    favoured_tfs: list[dict[str, Any]] | None = None
    disfavoured_tfs: list[dict[str, Any]] | None = None

    def array(self) -> np.ndarray | None:
        """The prototype as a (2, env_dim) float32 array, or None."""
        return None if self.prototype is None else np.asarray(self.prototype, dtype=np.float32)

    def to_json(self) -> str:
        """The prototype file's text (JSON object, format ``epcli-prototype`` version 1)."""
        d = {"format": PROTOTYPE_FORMAT, "version": PROTOTYPE_VERSION, **asdict(self)}
        return json.dumps(d, indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str, path: str | os.PathLike | None = None) -> Prototype:
        """Parse a prototype file's text.

        Raises
        ------
        EpcliError
            Invalid JSON, wrong format marker, newer version, missing or malformed fields.
        """
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EpcliError(
                f"prototype file is not valid JSON ({exc.msg})", path=path, line=exc.lineno
            ) from None
        if not isinstance(d, dict) or d.get("format") != PROTOTYPE_FORMAT:
            raise EpcliError(
                f"not an epcli prototype file (no format {PROTOTYPE_FORMAT!r})",
                path=path,
                hint="make one with epcli adapt",
            )
        if not isinstance(d.get("version"), int) or d["version"] > PROTOTYPE_VERSION:
            raise EpcliError(
                f"prototype file version {d.get('version')!r} is not supported "
                f"(this epcli reads version {PROTOTYPE_VERSION})",
                path=path,
            )
        names = [f for f in cls.__dataclass_fields__]
        optional = ("epcli_version", "favoured_tfs", "disfavoured_tfs")
        required = [n for n in names if n not in optional]
        missing = [n for n in required if n not in d]
        if missing:
            raise EpcliError(
                "prototype file lacks " + ", ".join(missing), path=path, hint="rebuild it"
            )
        check_prototype_fields(d, path)
        kw = {n: d[n] for n in names if n in d}
        proto = kw["prototype"]
        if proto is not None:
            arr = np.asarray(proto, dtype=object)
            ok = (
                arr.ndim == 2
                and arr.shape[0] == 2
                and all(isinstance(v, (int, float)) and math.isfinite(v) for v in arr.ravel())
            )
            if not ok:
                raise EpcliError(
                    "prototype file: 'prototype' must be 2 rows of finite numbers", path=path
                )
            kw["prototype"] = [[float(v) for v in row] for row in proto]
        try:
            for f in ("shots", "n_pos", "n_neg"):
                kw[f] = int(kw[f])
            for f in ("threshold_best_f1", "threshold_at_recall", "target_recall"):
                kw[f] = float(kw[f])
            if kw["temperature"] is not None:
                kw["temperature"] = float(kw["temperature"])
            kw["model_fingerprint"] = str(kw["model_fingerprint"])
            kw["model_kind"] = str(kw["model_kind"])
            kw["cell"] = str(kw["cell"])
            for f in ("favoured_tfs", "disfavoured_tfs"):
                if kw.get(f) is not None:
                    kw[f] = [
                        {"id": str(t["id"]), "name": str(t["name"]), "weight": float(t["weight"])}
                        for t in kw[f]
                    ]
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise EpcliError(f"prototype file has a malformed field ({exc})", path=path) from None
        return cls(**kw)

    def save(self, path: str | os.PathLike) -> None:
        """Write the prototype file atomically."""
        from epcli.io.files import atomic_path

        with atomic_path(path) as tmp:
            Path(tmp).write_text(self.to_json(), encoding="utf-8")


def check_prototype_fields(raw: dict[str, Any], path: str | os.PathLike | None) -> None:
    """Types and ranges of a prototype file's fields (exit 1 naming the field): strings where
    names are expected, counts whole numbers >= 0, thresholds finite and in [0, 1], the
    target recall in (0, 1], the temperature finite and > 0 (the model's bounds are checked
    by :meth:`Predictor.check_prototype`)."""

    def bad(name: str, allowed: str) -> EpcliError:
        return EpcliError(
            f"prototype file: {name}={raw.get(name)!r} is not allowed",
            path=path,
            hint=f"{name} must be {allowed}; rebuild the file with epcli adapt",
        )

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    for f in ("model_fingerprint", "model_kind", "cell"):
        if not isinstance(raw.get(f), str):
            raise bad(f, "a string")
    for f in ("shots", "n_pos", "n_neg"):
        v = raw.get(f)
        if not number(v) or v != int(v) or v < 0:
            raise bad(f, "a whole number >= 0")
    for f in ("threshold_best_f1", "threshold_at_recall"):
        if not number(raw.get(f)) or not 0.0 <= raw[f] <= 1.0:
            raise bad(f, "a finite number in [0, 1]")
    if not number(raw.get("target_recall")) or not 0.0 < raw["target_recall"] <= 1.0:
        raise bad("target_recall", "a number in (0, 1]")
    t = raw.get("temperature")
    if t is not None and (not number(t) or t <= 0):
        raise bad("temperature", "a finite number > 0 within the model's temperature bounds")


def load_prototype(path: str | os.PathLike, predictor: Predictor | None = None) -> Prototype:
    """Read a prototype file and check that it belongs to ``predictor``'s model.

    Raises
    ------
    EpcliError
        Unreadable or malformed file, or a model fingerprint / kind / width that differs
        from the predictor's ("prototype was built for model X, this model is Y").
    """
    p = Path(path)
    if p.is_dir():
        raise EpcliError("prototype path is a directory, expected a file", path=p)
    if not p.is_file():
        raise EpcliError("prototype file not found", path=p, hint="make one with epcli adapt")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EpcliError(f"cannot read prototype file: {exc}", path=p) from None
    proto = Prototype.from_json(text, path=p)
    if predictor is not None:
        predictor.check_prototype(proto, path=p)
    return proto


# ---------------------------------------------------------------------------- predictor
class Predictor:
    """A loaded model directory, ready to score pairs.

    Use :meth:`load`. Attributes: ``kind``, ``windows`` (``{"enhancer": Le, "promoter":
    Lp}``), ``fingerprint``, ``model_card``, ``device``, ``model`` (torch module or
    scikit-learn baseline), ``cell_prototypes`` (training cells' prototypes, may be empty).
    """

    def __init__(self, loaded: LoadedModel, model: Any, device: Any) -> None:
        self.loaded = loaded
        self.model = model
        self.device = device
        self.kind: str = loaded.kind
        self.windows: dict[str, int] = dict(loaded.windows)
        self.fingerprint: str = loaded.fingerprint
        self.model_card: dict[str, Any] = loaded.model_card
        self.path: Path = loaded.path
        self.cell_prototypes: dict[str, np.ndarray] = {
            c: np.asarray(v, dtype=np.float32) for c, v in loaded.cell_prototypes.items()
        }
        #: Cross-chunk anchor cache (:class:`~epcli.inference.cache.WindowCache`); None: per chunk.
        self.window_cache = None

    # -------------------------------------------------------------- loading
    @classmethod
    def load(
        cls, model_dir: str | os.PathLike, device: str | Any = "auto", allow_incomplete=False
    ) -> Predictor:
        """Load a model directory onto a device.

        Parameters
        ----------
        model_dir : path
        device : str or torch.device
            ``auto`` / ``cpu`` / ``cuda`` (see :func:`resolve_device`); ignored by the
            scikit-learn baselines (they run on CPU).
        allow_incomplete : bool
            Accept a directory whose training was interrupted (its best weights so far).

        Raises
        ------
        EpcliError
            Missing, incomplete or corrupt directory; weights that do not fit the config.
        """
        loaded = load_model_dir(model_dir, allow_incomplete=allow_incomplete)
        if loaded.kind in SKLEARN_KINDS:
            from epcli.model.baselines import baseline_from_json

            return cls(loaded, baseline_from_json(loaded.params), None)
        import torch

        from epcli.model.config import ModelConfig
        from epcli.model.registry import build_model

        dev = device if isinstance(device, torch.device) else resolve_device(device)
        mcfg = ModelConfig.from_dict(loaded.model_config)
        model = build_model(mcfg)
        try:
            model.load_state_dict(loaded.state_dict, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise EpcliError(
                f"corrupt model directory: weights do not fit the model config ({first})",
                path=loaded.path,
            ) from None
        model.to(dev).eval()
        return cls(loaded, model, dev)

    @property
    def is_torch(self) -> bool:
        """True for the torch models (prism, crossattn)."""
        return self.kind not in SKLEARN_KINDS

    @property
    def has_prototype(self) -> bool:
        """True when the model has an environment head (prism)."""
        return self.is_torch and getattr(self.model, "population_prototype", None) is not None

    @property
    def model_temperature(self) -> float:
        """The trained model's T (1 for the scikit-learn baselines)."""
        t = self.temperature()
        return 1.0 if t is None else t

    @property
    def temperature_bounds(self) -> tuple[float, float]:
        """Range allowed for a calibrated temperature (the model config's for torch models)."""
        if self.is_torch:
            return float(self.model.cfg.t_min), float(self.model.cfg.t_max)
        return 0.25, 4.0

    def temperature(self) -> float | None:
        """The model's temperature T (None for the baselines)."""
        if not self.is_torch:
            return None
        return float(self.model.temperature().detach().float().cpu())

    # -------------------------------------------------------------- checks
    def check_windows(self, data: PairData) -> None:
        """Raise EpcliError when the data's window sizes differ from the model's."""
        if self.kind == "distance":
            return
        le, lp = int(data.enh_seqs.shape[1]), int(data.pro_seqs.shape[1])
        if (le, lp) != (self.windows["enhancer"], self.windows["promoter"]):
            raise EpcliError(
                f"the data has windows enhancer={le} promoter={lp} bp but the model expects "
                f"enhancer={self.windows['enhancer']} promoter={self.windows['promoter']} bp",
                hint="prepare the pairs again with the model's window sizes",
            )

    def check_prototype(self, proto: Prototype, path: str | os.PathLike | None = None) -> None:
        """Raise EpcliError when ``proto`` was not built for this model."""
        if proto.model_fingerprint != self.fingerprint:
            raise EpcliError(
                f"prototype was built for model {proto.model_fingerprint}, "
                f"this model is {self.fingerprint}",
                path=path,
                hint="run epcli adapt again with this model",
            )
        if proto.model_kind != self.kind:
            raise EpcliError(
                f"prototype is for a {proto.model_kind!r} model, this model is {self.kind!r}",
                path=path,
            )
        if proto.temperature is not None:
            lo, hi = self.temperature_bounds
            if not lo <= proto.temperature <= hi:
                raise EpcliError(
                    f"prototype file: temperature={proto.temperature!r} is outside the model's "
                    f"bounds [{lo:g}, {hi:g}]",
                    path=path,
                    hint="rebuild the file with epcli adapt",
                )
        if self.has_prototype and proto.prototype is not None:
            want = tuple(self.model.population_prototype.shape)
            if proto.array().shape != want:
                raise EpcliError(
                    f"prototype has shape {proto.array().shape}, the model needs {want}",
                    path=path,
                )

    # -------------------------------------------------------------- scoring
    def features(
        self,
        data: PairData,
        batch_size: int = 256,
        progress: Progress | None = None,
        keep_ui_feat: bool = False,
        row_offset: int = 0,
    ) -> dict[str, np.ndarray | None]:
        """Prototype-independent features (``u_i``, ``env``) of a torch model; see
        :func:`pair_features_unique`."""
        return pair_features_unique(
            self.model,
            data,
            batch_size=batch_size,
            progress=progress,
            keep_ui_feat=keep_ui_feat,
            row_offset=row_offset,
            cache=self.window_cache,
        )

    def score(
        self,
        data: PairData,
        prototype: Prototype | None = None,
        batch_size: int = 256,
        progress: Progress | None = None,
        row_offset: int = 0,
    ) -> dict[str, np.ndarray]:
        """Score every pair of ``data``.

        Parameters
        ----------
        data : PairData
            ``n`` pairs with the model's window sizes (labels are not used).
        prototype : Prototype, optional
            The cell's prototype (``epcli adapt``); None = population prototype (zero-shot).
        batch_size : int
            Anchors per encoder batch / pairs per pair batch.
        progress : callable, optional
            ``progress(pairs_done, n)``.
        row_offset : int
            Global index of the first pair in the whole input: with it, a pair's score does
            not depend on how the input was chunked or sharded (see :func:`aligned_batches`).

        Returns
        -------
        dict of str to np.ndarray, shape (n,), float64
            ``logit``, ``u_i``, ``r_e``, ``prob`` = sigmoid(logit). For the scikit-learn
            baselines ``u_i`` = logit and ``r_e`` = 0.
        """
        self.check_windows(data)
        if prototype is not None:
            self.check_prototype(prototype)
        if data.n_pairs == 0:
            z = np.zeros(0, np.float64)
            return {"logit": z, "u_i": z.copy(), "r_e": z.copy(), "prob": z.copy()}
        if not self.is_torch:
            logit = np.asarray(self.model.logit(data), dtype=np.float64)
            if progress is not None:
                progress(data.n_pairs, data.n_pairs)
            out = {"logit": logit, "u_i": logit.copy(), "r_e": np.zeros_like(logit)}
        else:
            feats = self.features(
                data, batch_size=batch_size, progress=progress, row_offset=row_offset
            )
            out = score_features(
                self.model, feats, None if prototype is None else prototype.array(), row_offset
            )
        if prototype is not None and prototype.temperature is not None:
            # the cell's calibrated temperature replaces the model's
            out["logit"] = out["logit"] * (self.model_temperature / prototype.temperature)
        out["prob"] = sigmoid(out["logit"])
        return out

    # -------------------------------------------------------------- prototypes
    def build_prototype(
        self,
        support: PairData,
        cell: str,
        target_recall: float = 0.7,
        shots: int | None = None,
        seed: int = 0,
        batch_size: int = 256,
        progress: Progress | None = None,
    ) -> Prototype:
        """Build a cell's prototype and calibrate thresholds from labeled support pairs.

        Parameters
        ----------
        support : PairData
            Labeled pairs of the cell (label -1 rows are ignored); both classes required.
        cell : str
            Name of the cell line (recorded in the file).
        target_recall : float
            Recall the ``threshold_at_recall`` must reach on the support set (0 < r <= 1).
        shots : int, optional
            Use a stratified, seeded subset of this many labeled pairs.
        seed : int
            Seed of that subset.
        progress : callable, optional
            ``progress(pairs_done, n)`` while the support pairs are encoded.

        Returns
        -------
        Prototype
            prism: class means of e(x) over the support; other kinds: ``prototype`` None
            (calibration only). Thresholds are computed on the support scored with the new
            prototype.

        Raises
        ------
        EpcliError
            One class missing, or fewer labeled pairs than ``shots``.
        """
        if not 0.0 < target_recall <= 1.0:
            raise UsageError(f"target recall must be in (0, 1], got {target_recall}")
        self.check_windows(support)
        y_all = np.asarray(support.label)
        pos = np.flatnonzero(y_all == 1)
        neg = np.flatnonzero(y_all == 0)
        if pos.size == 0 or neg.size == 0:
            raise EpcliError(
                f"the support set of cell {cell!r} needs labeled positive and negative pairs, "
                f"got {pos.size} positive and {neg.size} negative",
                hint="add labeled pairs of the missing class (a 'label' column of 0/1)",
            )
        if shots is not None:
            if shots < 2:
                raise UsageError(f"--shots must be at least 2, got {shots}")
            if shots > pos.size + neg.size:
                raise EpcliError(
                    f"--shots {shots} but the support set of cell {cell!r} has only "
                    f"{pos.size + neg.size} labeled pairs",
                    hint="lower --shots or add labeled pairs",
                )
            p, n = stratified_pick(np.random.default_rng(seed), pos, neg, shots)
            rows = np.sort(np.concatenate([p, n]))
        else:
            rows = np.sort(np.concatenate([pos, neg]))
        sub = support.subset(rows)
        y = np.asarray(sub.label, dtype=np.int64)
        proto_arr: np.ndarray | None = None
        if self.has_prototype:
            feats = self.features(sub, batch_size=batch_size, progress=progress)
            proto_arr = make_prototype_np(self.model, feats["env"], y)
            logit = score_features(self.model, feats, proto_arr)["logit"]
        else:
            logit = self.score(sub, batch_size=batch_size, progress=progress)["logit"]
        margin = logit * self.model_temperature
        temp = calibrate_temperature(margin, y, *self.temperature_bounds)
        prob = sigmoid(margin / temp)
        fav = dis = None
        if proto_arr is not None and hasattr(self.model, "scanner"):
            from epcli.model.motif import prototype_tfs

            ref = self.model.population_prototype.detach().cpu().numpy()
            fav, dis = prototype_tfs(self.model, proto_arr, ref)
        return Prototype(
            model_fingerprint=self.fingerprint,
            model_kind=self.kind,
            cell=str(cell),
            shots=int(rows.size),
            n_pos=int((y == 1).sum()),
            n_neg=int((y == 0).sum()),
            prototype=None if proto_arr is None else proto_arr.astype(float).tolist(),
            temperature=temp,
            threshold_best_f1=best_f1_threshold(y, prob),
            threshold_at_recall=threshold_at_recall(y, prob, target_recall),
            target_recall=float(target_recall),
            favoured_tfs=fav,
            disfavoured_tfs=dis,
        )


# ---------------------------------------------------------------------------- extrapolation
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


__all__ = [
    "Predictor",
    "Prototype",
    "best_f1_threshold",
    "extrapolation_warning",
    "load_prototype",
    "make_prototype_np",
    "pair_features_unique",
    "prototype_distances",
    "resolve_device",
    "score_features",
    "sigmoid",
    "stratified_pick",
    "threshold_at_recall",
    "training_prototype_spread",
]
