"""The prototype file of ``epcli adapt`` (JSON, format ``epcli-prototype`` version 1):
a cell line's prototype and calibrated thresholds, bound to one model by its fingerprint."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import epcli
from epcli.core.errors import EpcliError
from epcli.io.files import atomic_path

PROTOTYPE_FORMAT = "epcli-prototype"


PROTOTYPE_VERSION = 1


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
