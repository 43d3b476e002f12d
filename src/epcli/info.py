"""What a model directory or a prototype file holds (the library side of ``epcli info``).

:func:`describe` reads ``config.json`` and ``model_card.json`` of a model directory (or a
prototype file) into one plain dict; :func:`format_info` lays it out as text for a terminal.
Keys a model card may lack (older cards, baselines, the bundled distance prior) are simply
left out; nothing here fails on a missing optional key.

Optional keys shown when present: ``motif_set`` (dict: source, release, collection, taxon,
n_motifs, checksum) in the model card or config; ``top_motifs`` in the model card (list of
``{"id", "name", "part", "effect"}``, by decreasing ``|effect|``); ``favoured_tfs`` /
``disfavoured_tfs`` in a prototype file (lists of ``{"id", "name", "weight"}``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from epcli.core.errors import EpcliError

#: How many motifs / TFs the text view lists.
TOP_N = 10


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EpcliError(f"{what} not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EpcliError(f"cannot read {what}: {exc}", path=path) from None
    except json.JSONDecodeError as exc:
        raise EpcliError(
            f"{what} is not valid JSON ({exc.msg}, line {exc.lineno})", path=path
        ) from None
    if not isinstance(data, dict):
        raise EpcliError(f"{what} is not a JSON object", path=path)
    return data


def _num(v: Any) -> float | None:
    """A finite float, or None."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """Summary of a model directory or a prototype file.

    Parameters
    ----------
    path : path-like
        A model directory (``epcli train``) or a prototype file (``epcli adapt``).

    Returns
    -------
    dict
        ``{"type": "model", ...}`` (see :func:`describe_model`) or ``{"type": "prototype",
        ...}`` (see :func:`describe_prototype`); JSON-serialisable.

    Raises
    ------
    EpcliError
        Missing path, unreadable or invalid JSON, or a file that is neither.
    """
    p = Path(path)
    if p.is_dir():
        return describe_model(p)
    if p.is_file():
        return describe_prototype(p)
    raise EpcliError(
        "not found", path=p, hint="give a model directory (epcli train) or a prototype file"
    )


def describe_model(model_dir: str | os.PathLike) -> dict[str, Any]:
    """Summary of a model directory: kind, windows, motif set, training cells, validation
    AUPR beside distance, components and their contributions, top motifs."""
    d = Path(model_dir)
    if not (d / "config.json").is_file():
        raise EpcliError(
            "not a model directory (no config.json)",
            path=d,
            hint="give a directory written by epcli train",
        )
    cfg = _read_json(d / "config.json", "config.json")
    card = (
        _read_json(d / "model_card.json", "model card") if (d / "model_card.json").is_file() else {}
    )
    train_cfg = cfg.get("train") or {}
    split = card.get("split") or cfg.get("split") or {}
    train_cells = (
        (card.get("train") or {}).get("cells")
        or split.get("train_cells")
        or train_cfg.get("train_cells")
        or list((card.get("training_data") or {}).get("cells") or {})
    )
    motif_set = (
        card.get("motif_set") or cfg.get("motif_set") or (cfg.get("model") or {}).get("motif_set")
    )
    out: dict[str, Any] = {
        "type": "model",
        "path": str(d),
        "kind": cfg.get("model_kind") or card.get("model_kind"),
        "name": card.get("name"),
        "fingerprint": card.get("fingerprint"),
        "epcli_version": cfg.get("epcli_version") or card.get("epcli_version"),
        "windows": cfg.get("windows"),
        "uses_sequence": card.get("uses_sequence", cfg.get("model_kind") != "distance"),
        "motif_set": motif_set,
        "training_cells": list(train_cells or []),
        "validation_cells": list(split.get("val_cells") or []),
        "training_pairs": (card.get("train") or {}).get("pairs"),
        "temperature": _num(card.get("temperature")),
        "collapsed": card.get("collapsed"),
        "collapse_reasons": (card.get("collapse") or {}).get("reasons") or [],
        "validation": _validation_rows(card),
        "components": _components(card),
        "top_motifs": list(card.get("top_motifs") or []),
    }
    return out


def _validation_rows(card: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per validation set and per cell in it: n, prevalence, AUPRs, distance AUPR."""
    rows: list[dict[str, Any]] = []
    val = card.get("validation") or {}
    per_cell = val.get("held_out_per_cell")
    if isinstance(per_cell, dict):  # the bundled distance prior's card: {cell: {...}}, ALL
        distance = card.get("model_kind") == "distance"
        for cell, r in sorted(per_cell.items(), key=lambda kv: kv[0] != "ALL"):
            if not isinstance(r, dict):
                continue
            aupr = _num(r.get("aupr"))
            rows.append(
                {
                    "set": "held_out",
                    "cell": None if cell == "ALL" else cell,
                    "n": r.get("n"),
                    "prevalence": _num(r.get("prevalence")),
                    "aupr_zero_shot": aupr,
                    "aupr_adapted": None,
                    "distance_aupr": aupr if distance else None,
                }
            )
        return rows
    for name, s in val.items():
        if not isinstance(s, dict):
            continue
        rows.append(_val_row(name, None, s))
        for cell, c in (s.get("cells") or {}).items():
            if isinstance(c, dict):
                rows.append(_val_row(name, cell, c))
    return rows


def _val_row(name: str, cell: str | None, s: dict[str, Any]) -> dict[str, Any]:
    return {
        "set": name,
        "cell": cell,
        "n": s.get("n"),
        "prevalence": _num(s.get("prevalence")),
        "aupr_zero_shot": _num(s.get("aupr_zero_shot")),
        "aupr_adapted": _num(s.get("aupr_adapted")),
        "distance_aupr": _num(s.get("distance_aupr")),
    }


def _components(card: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, c in (card.get("components") or {}).items():
        if not isinstance(c, dict):
            continue
        active = c.get("enabled", c.get("active"))
        rows.append(
            {
                "name": name,
                "active": None if active is None else bool(active),
                "contribution": _num(c.get("contribution")),
                "note": c.get("note"),
            }
        )
    return rows


def describe_prototype(path: str | os.PathLike) -> dict[str, Any]:
    """Summary of a prototype file (``epcli adapt``): cell, shots, model it is bound to,
    calibrated temperature and thresholds, and favoured / disfavoured TFs when recorded."""
    p = Path(path)
    data = _read_json(p, "prototype file")
    if data.get("format") != "epcli-prototype":
        raise EpcliError(
            "not a prototype file or model directory",
            path=p,
            hint="give a model directory (epcli train) or a prototype file (epcli adapt)",
        )
    proto = data.get("prototype")
    return {
        "type": "prototype",
        "path": str(p),
        "cell": data.get("cell"),
        "shots": data.get("shots"),
        "n_pos": data.get("n_pos"),
        "n_neg": data.get("n_neg"),
        "model_kind": data.get("model_kind"),
        "model_fingerprint": data.get("model_fingerprint"),
        "env_dim": len(proto[0]) if isinstance(proto, list) and proto else None,
        "temperature": _num(data.get("temperature")),
        "threshold_best_f1": _num(data.get("threshold_best_f1")),
        "threshold_at_recall": _num(data.get("threshold_at_recall")),
        "target_recall": _num(data.get("target_recall")),
        "favoured_tfs": list(data.get("favoured_tfs") or []),
        "disfavoured_tfs": list(data.get("disfavoured_tfs") or []),
        "epcli_version": data.get("epcli_version"),
    }


# ---------------------------------------------------------------------------- text
def _f(v: Any, digits: int = 3, signed: bool = False) -> str:
    x = _num(v)
    if x is None:
        return "-"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _table(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    return [fmt(header).rstrip(), *(fmt(r).rstrip() for r in rows)]


def _motif_set_text(ms: Any) -> str:
    if not isinstance(ms, dict):
        return "none recorded"
    keys = ("source", "spec", "release", "collection", "taxon")
    parts = [str(ms[k]) for k in keys if ms.get(k)]
    text = " ".join(parts) or "recorded"
    if ms.get("n_motifs") is not None:
        text += f", {ms['n_motifs']} motifs"
    if ms.get("checksum"):
        text += f" (checksum {str(ms['checksum'])[:16]})"
    return text


def format_info(info: dict[str, Any], top: int = TOP_N) -> str:
    """The summary of :func:`describe` as text for a terminal (ends with a newline)."""
    if info["type"] == "prototype":
        return _format_prototype(info, top)
    lines = []
    kind = info.get("kind") or "?"
    head = f"model       {kind}"
    if info.get("name"):
        head += f" - {info['name']}"
    lines.append(head)
    lines.append(f"path        {info['path']}")
    meta = []
    if info.get("fingerprint"):
        meta.append(f"fingerprint {info['fingerprint']}")
    if info.get("epcli_version"):
        meta.append(f"epcli {info['epcli_version']}")
    if meta:
        lines.append("            " + ", ".join(meta))
    w = info.get("windows") or {}
    if w:
        seq = "" if info.get("uses_sequence", True) else " (no sequence is read)"
        lines.append(
            f"windows     enhancer {w.get('enhancer')} bp, promoter {w.get('promoter')} bp{seq}"
        )
    lines.append(f"motif set   {_motif_set_text(info.get('motif_set'))}")
    cells = ", ".join(info.get("training_cells") or []) or "not recorded"
    extra = f" ({info['training_pairs']:,} training pairs)" if info.get("training_pairs") else ""
    lines.append(f"trained on  {cells}{extra}")
    if info.get("validation_cells"):
        lines.append(f"validated   held-out cells {', '.join(info['validation_cells'])}")
    if info.get("temperature") is not None:
        lines.append(f"temperature {info['temperature']:.3g}")
    if info.get("collapsed") is not None:
        text = "YES: " + "; ".join(info["collapse_reasons"]) if info["collapsed"] else "no"
        lines.append(f"collapsed   {text}")
    val = info.get("validation") or []
    if val:
        lines += ["", "validation AUPR (compare with prevalence and distance)"]
        rows = [
            [
                r["set"] if r["cell"] is None else f"  {r['cell']}",
                "-" if r.get("n") is None else f"{r['n']:,}",
                _f(r.get("prevalence")),
                _f(r.get("aupr_zero_shot")),
                _f(r.get("aupr_adapted")),
                _f(r.get("distance_aupr")),
            ]
            for r in val
        ]
        lines += _table(["set / cell", "n", "prevalence", "zero-shot", "adapted", "distance"], rows)
    comps = info.get("components") or []
    if comps:
        lines += ["", "components (contribution: validation AUPR with it minus without it)"]
        rows = [
            [
                c["name"],
                {True: "yes", False: "no", None: "-"}[c["active"]],
                _f(c.get("contribution"), signed=True),
            ]
            for c in comps
        ]
        lines += _table(["component", "active", "contribution"], rows)
    motifs = info.get("top_motifs") or []
    if motifs:
        lines += ["", f"top motifs (by |effect|, {min(top, len(motifs))} of {len(motifs)})"]
        rows = [
            [
                str(m.get("id", "")),
                str(m.get("name", "")),
                str(m.get("part", "")),
                _f(m.get("effect"), signed=True),
            ]
            for m in motifs[:top]
        ]
        lines += _table(["id", "name", "part", "effect"], rows)
    return "\n".join(lines) + "\n"


def _format_prototype(info: dict[str, Any], top: int) -> str:
    lines = [
        f"prototype   cell {info.get('cell')}",
        f"path        {info['path']}",
        f"model       {info.get('model_kind')} (fingerprint {info.get('model_fingerprint')})",
        f"support     {info.get('shots')} labeled pairs ({info.get('n_pos')} positive, "
        f"{info.get('n_neg')} negative)",
    ]
    if info.get("env_dim") is not None:
        lines.append(f"prototype   2 x {info['env_dim']} (class means of the environment features)")
    else:
        lines.append("prototype   none (calibration only)")
    lines.append(f"temperature {_f(info.get('temperature'), 3)}")
    lines.append(
        f"thresholds  best F1 {_f(info.get('threshold_best_f1'), 4)}; at recall "
        f"{_f(info.get('target_recall'), 2)}: {_f(info.get('threshold_at_recall'), 4)}"
    )
    for key, title in (("favoured_tfs", "favoured TFs"), ("disfavoured_tfs", "disfavoured TFs")):
        tfs = info.get(key) or []
        if tfs:
            lines += ["", f"{title} ({min(top, len(tfs))} of {len(tfs)})"]
            rows = [
                [str(t.get("id", "")), str(t.get("name", "")), _f(t.get("weight"), signed=True)]
                for t in tfs[:top]
            ]
            lines += _table(["id", "name", "weight"], rows)
    return "\n".join(lines) + "\n"


__all__ = ["describe", "describe_model", "describe_prototype", "format_info"]
