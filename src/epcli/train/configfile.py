"""``epcli train --config FILE.json``: a config file merged over the defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epcli.core.errors import EXIT_DATA, EpcliError
from epcli.core.schema import TORCH_KINDS


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a JSON object with optional ``train`` and ``model`` objects.

    A resolved ``config.json`` of a model directory is accepted too (its other keys, such as
    ``windows`` or ``epcli_version``, are ignored), so a run can be repeated from it.

    Raises
    ------
    EpcliError
        Missing file, invalid JSON (with its line), wrong shapes, unknown top-level keys.
    """
    if path.is_dir():
        raise EpcliError("config path is a directory, expected a JSON file", path=path)
    if not path.is_file():
        raise EpcliError("config file not found", path=path)
    try:
        d = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise EpcliError(
            "config is not UTF-8 text (a binary file?)",
            path=path,
            hint='give a JSON file like {"train": {...}, "model": {...}}',
        ) from None
    except OSError as exc:
        raise EpcliError(f"cannot read config: {exc.strerror}", path=path) from None
    except RecursionError:
        raise EpcliError("config nests too deeply to be a config", path=path) from None
    except json.JSONDecodeError as exc:
        raise EpcliError(
            f"config is not valid JSON ({exc.msg})", path=path, line=exc.lineno
        ) from None
    if not isinstance(d, dict):
        raise EpcliError("config must be a JSON object", path=path)
    resolved = "epcli_version" in d and "windows" in d
    if not resolved:
        unknown = sorted(set(d) - {"train", "model"})
        if unknown:
            raise EpcliError(
                "config: unknown top-level key(s) " + ", ".join(repr(k) for k in unknown),
                path=path,
                hint='use {"train": {...training options...}, "model": {...architecture...}}',
            )
    out: dict[str, Any] = {}
    for key in ("train", "model"):
        if key in d:
            if not isinstance(d[key], dict):
                raise EpcliError(f"config: {key!r} must be a JSON object", path=path)
            out[key] = d[key]
    return out


def resolve_configs(
    config: Path | None,
    overrides: dict[str, Any],
    base: dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """Training and model configs: defaults < ``base`` < config file < command-line
    ``overrides``.

    One rule for exit codes: anything wrong in the config file's content (invalid JSON,
    unknown keys, wrong types, NaN or out-of-range values) is bad data, exit 1, with the
    file named; a bad command-line option is bad usage, exit 2.

    Parameters
    ----------
    config : path, optional
        ``--config`` file.
    overrides : dict
        Command-line options (``None`` values are ignored).
    base : dict, optional
        ``{"train": ..., "model": ...}`` under the file, e.g. the saved configs of a run
        being resumed.

    Returns
    -------
    (TrainConfig, ModelConfig)

    Raises
    ------
    EpcliError
        Unknown keys (named, with the valid ones) or bad values.
    """
    from epcli.model.config import ModelConfig
    from epcli.train import TrainConfig

    cfg = load_config_file(config) if config is not None else {}
    base = base or {}
    tdict = {**base.get("train", {}), **cfg.get("train", {})}
    mbase = {**base.get("model", {}), **cfg.get("model", {})}

    def build(train: dict[str, Any]) -> tuple[Any, Any]:
        tcfg = TrainConfig.from_dict(train)
        mdict = dict(mbase)
        mdict["kind"] = tcfg.model if tcfg.model in TORCH_KINDS else "prism"
        return tcfg, ModelConfig.from_dict(mdict)

    if config is not None:
        try:  # the file's content alone: any problem is bad data in that file
            build(tdict)
        except EpcliError as exc:
            exc.exit_code = EXIT_DATA
            if exc.path is None:
                exc.path = str(config)
            raise
    tdict.update({k: v for k, v in overrides.items() if v is not None})
    return build(tdict)
