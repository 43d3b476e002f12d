"""JASPAR from pyjaspar's bundled SQLite releases, read directly with :mod:`sqlite3`.

pyjaspar ships every JASPAR release from 2014 to 2026 as an SQLite file inside its wheel, so
loading needs no network. Its Python API goes through Biopython's ``Bio.motifs`` objects;
reading the four tables we need (MATRIX, MATRIX_DATA, MATRIX_ANNOTATION) directly is a few
lines, takes ~0.1 s instead of seconds, and does not tie epcli to Biopython's motif API.
pyjaspar stays the dependency that provides (and versions) the database files.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import numpy as np

from epcli.core.errors import EpcliError, UsageError
from epcli.motifs.pwm import Motif, MotifSet, check_motif_set


def jaspar_data_dir() -> Path:
    """Folder of pyjaspar's SQLite files (found without importing pyjaspar or Biopython).

    Raises
    ------
    EpcliError
        When pyjaspar is not installed.
    """
    spec = importlib.util.find_spec("pyjaspar")
    if spec is None or not spec.submodule_search_locations:
        raise EpcliError(
            "pyjaspar is not installed, so the JASPAR motif database is missing",
            hint="pip install pyjaspar (it carries the database; no network is needed after)",
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def available_releases() -> list[str]:
    """Release names with a database file, e.g. ``["JASPAR2014", ..., "JASPAR2026"]``."""
    return sorted(p.stem for p in jaspar_data_dir().glob("JASPAR*.sqlite"))


def load_jaspar(
    release: str = "2024", collection: str = "CORE", taxon: str | None = "vertebrates"
) -> MotifSet:
    """Non-redundant JASPAR matrices: the latest version of each base ID.

    Parameters
    ----------
    release : str
        ``"2024"`` or ``"JASPAR2024"``.
    collection : str
        JASPAR collection, e.g. ``CORE`` or ``UNVALIDATED``.
    taxon : str or None
        Taxonomic group (``vertebrates``, ``plants``, ``insects``, ...); None for all.

    Returns
    -------
    MotifSet
        Sorted by matrix ID.

    Raises
    ------
    UsageError
        Unknown release, or no matrix for the collection and taxon.
    """
    rel = str(release).upper()
    rel = rel if rel.startswith("JASPAR") else f"JASPAR{rel}"
    path = jaspar_data_dir() / f"{rel}.sqlite"
    if not path.is_file():
        raise UsageError(
            f"JASPAR release {release!r} is not available",
            hint="choose one of " + ", ".join(available_releases()),
        )
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT ID, BASE_ID, VERSION, NAME FROM MATRIX WHERE upper(COLLECTION) = ?",
            (collection.upper(),),
        ).fetchall()
        tax = dict(
            con.execute(
                "SELECT ID, VAL FROM MATRIX_ANNOTATION WHERE lower(TAG) = 'tax_group'"
            ).fetchall()
        )
        latest: dict[str, tuple[int, int, str]] = {}
        for mid, base, ver, name in rows:
            if taxon is not None and str(tax.get(mid, "")).lower() != taxon.lower():
                continue
            if base not in latest or int(ver) > latest[base][1]:
                latest[base] = (int(mid), int(ver), str(name))
        if not latest:
            raise UsageError(
                f"{rel} has no {collection} matrices for taxon {taxon!r}",
                hint="taxa are e.g. vertebrates, plants, insects, nematodes, fungi, urochordates",
            )
        ids = [v[0] for v in latest.values()]
        data: dict[int, dict[str, dict[int, float]]] = {i: {} for i in ids}
        q = ",".join("?" * len(ids))
        for mid, row, col, val in con.execute(
            f"SELECT ID, row, col, val FROM MATRIX_DATA WHERE ID IN ({q})", ids
        ):
            data[mid].setdefault(str(row).upper(), {})[int(col)] = float(val)
    finally:
        con.close()
    motifs = []
    for base in sorted(latest):
        mid, ver, name = latest[base]
        d = data[mid]
        k = max(max(d[b]) for b in "ACGT")
        counts = np.array([[d[b].get(j, 0.0) for j in range(1, k + 1)] for b in "ACGT"])
        motifs.append(Motif(f"{base}.{ver}", name, counts))
    ms = MotifSet(motifs, "jaspar", rel, collection.upper(), taxon)
    check_motif_set(ms, path.name)
    return ms
