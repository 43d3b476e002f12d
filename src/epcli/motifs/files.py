"""Motif files a user brings: JASPAR (``.jaspar`` / ``.pfm``) and MEME text formats."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from epcli.core.errors import EpcliError
from epcli.motifs.pwm import Motif, MotifSet, check_motif_set

_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def read_motif_file(path: str | Path) -> MotifSet:
    """Read a JASPAR or MEME motif file (the format is recognised from the content).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    MotifSet
        ``source="file"``, in file order.

    Raises
    ------
    EpcliError
        With the file and line of the first problem.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise EpcliError(f"cannot read motif file: {exc}", path=p) from None
    lines = text.splitlines()
    if any(ln.startswith("MEME version") for ln in lines[:50]):
        motifs = _parse_meme(lines, p)
    else:
        motifs = _parse_jaspar(lines, p)
    ms = MotifSet(motifs, "file", path=p.name)
    check_motif_set(ms, p)
    return ms


def _numbers(line: str, path: Path, lineno: int) -> list[float]:
    vals = [float(x) for x in _NUM.findall(line)]
    if not vals or any(not np.isfinite(v) or v < 0 for v in vals):
        raise EpcliError(
            "expected non-negative numbers in a motif matrix row",
            path=path,
            line=lineno,
            hint="JASPAR rows look like 'A [ 4 19 0 ]'; MEME rows hold 4 probabilities",
        )
    return vals


def _parse_jaspar(lines: list[str], path: Path) -> list[Motif]:
    motifs: list[Motif] = []
    header: tuple[str, str, int] | None = None
    rows: list[list[float]] = []

    def flush() -> None:
        if header is None:
            return
        mid, name, ln = header
        if len(rows) != 4 or len({len(r) for r in rows}) != 1:
            raise EpcliError(
                f"motif {mid!r} needs 4 rows (A, C, G, T) of equal length, got "
                f"{[len(r) for r in rows]}",
                path=path,
                line=ln,
            )
        motifs.append(Motif(mid, name, np.asarray(rows, dtype=np.float64)))

    for i, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(">"):
            flush()
            parts = line[1:].split(None, 1)
            if not parts:
                raise EpcliError("motif header '>' without an ID", path=path, line=i)
            mid = parts[0]
            header = (mid, parts[1].strip() if len(parts) > 1 else mid, i)
            rows = []
            continue
        if header is None:
            raise EpcliError(
                "not a JASPAR or MEME motif file: text before the first '>' header",
                path=path,
                line=i,
                hint="JASPAR files start with '>MA0004.1 Arnt'; MEME files with 'MEME version'",
            )
        body = line
        if line[0].upper() in "ACGT" and (len(line) == 1 or not line[1].isdigit()):
            letter = line[0].upper()
            if letter != "ACGT"[len(rows)] if len(rows) < 4 else True:
                raise EpcliError(
                    f"row {letter!r} out of order in motif {header[0]!r}",
                    path=path,
                    line=i,
                    hint="rows must be A, C, G, T",
                )
            body = line[1:]
        rows.append(_numbers(body, path, i))
    flush()
    if not motifs:
        raise EpcliError("no motif found in the file", path=path, hint="expected JASPAR or MEME")
    return motifs


def _parse_meme(lines: list[str], path: Path) -> list[Motif]:
    motifs: list[Motif] = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i].strip()
        if line.startswith("MOTIF"):
            parts = line.split()
            if len(parts) < 2:
                raise EpcliError("MOTIF line without an ID", path=path, line=i + 1)
            mid = parts[1]
            name = parts[2] if len(parts) > 2 else mid
            start = i + 1
            j = i + 1
            while j < n and not lines[j].strip().startswith("letter-probability"):
                if lines[j].strip().startswith("MOTIF"):
                    break
                j += 1
            if j >= n or not lines[j].strip().startswith("letter-probability"):
                raise EpcliError(
                    f"motif {mid!r} has no letter-probability matrix", path=path, line=start
                )
            info = lines[j]
            w_m = re.search(r"w=\s*(\d+)", info)
            ns_m = re.search(r"nsites=\s*([0-9.eE+-]+)", info)
            nsites = float(ns_m.group(1)) if ns_m else 20.0
            width = int(w_m.group(1)) if w_m else None
            rows: list[list[float]] = []
            k = j + 1
            while k < n:
                s = lines[k].strip()
                if not s:
                    if rows:
                        break
                    k += 1
                    continue
                if s.startswith(("MOTIF", "URL", "letter-")):
                    break
                vals = _numbers(s, path, k + 1)
                if len(vals) != 4:
                    raise EpcliError(
                        f"motif {mid!r}: a matrix row needs 4 probabilities, got {len(vals)}",
                        path=path,
                        line=k + 1,
                    )
                rows.append(vals)
                k += 1
                if width is not None and len(rows) == width:
                    break
            if not rows or (width is not None and len(rows) != width):
                raise EpcliError(
                    f"motif {mid!r}: expected {width} matrix rows, got {len(rows)}",
                    path=path,
                    line=j + 1,
                )
            counts = np.asarray(rows, dtype=np.float64).T * max(nsites, 1.0)
            motifs.append(Motif(mid, name, counts))
            i = k
            continue
        i += 1
    if not motifs:
        raise EpcliError("no MOTIF found in the MEME file", path=path)
    return motifs
