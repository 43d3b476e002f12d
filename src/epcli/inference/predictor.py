"""Scoring with a trained model directory, and cell prototypes (``epcli adapt``).

:class:`Predictor` loads any model directory (prism, crossattn, kmer, distance) and scores a
:class:`~epcli.core.arrays.PairData`. For torch models every unique anchor window the pairs refer
to is encoded once, in batches; the pair-level part (cross-attention, heads) then runs on
batches of pairs that gather the cached tokens. A :class:`Prototype` (the JSON file of
``epcli adapt``) holds a cell line's prototype, bound to the model by its fingerprint, and
the decision thresholds calibrated on the support set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from epcli.core.arrays import PairData
from epcli.core.checks import check_target_recall
from epcli.core.errors import EpcliError, UsageError
from epcli.core.metrics import best_f1_threshold, threshold_at_recall
from epcli.core.sampling import stratified_pick
from epcli.core.schema import SKLEARN_KINDS
from epcli.inference.calibration import calibrate_temperature
from epcli.inference.device import resolve_device
from epcli.inference.engine import (
    Progress,
    make_prototype_np,
    pair_features_unique,
    score_features,
    sigmoid,
)
from epcli.io.modeldir import LoadedModel, load_model_dir
from epcli.io.prototype_file import Prototype


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
        check_target_recall(target_recall)
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
            proto_arr = make_prototype_np(self.model, feats["env"], y, feats["u_i"])
            logit = score_features(self.model, feats, proto_arr)["logit"]
        else:
            logit = self.score(sub, batch_size=batch_size, progress=progress)["logit"]
        margin = logit * self.model_temperature
        temp = calibrate_temperature(margin, y, *self.temperature_bounds)
        prob = sigmoid(margin / temp)
        fav = dis = None
        if proto_arr is not None and hasattr(self.model, "scanner"):
            from epcli.model.motif_read import prototype_tfs

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
