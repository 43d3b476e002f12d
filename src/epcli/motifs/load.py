"""One entry point to a motif set: a JASPAR release name or a JASPAR / MEME motif file."""

from __future__ import annotations

import os
from pathlib import Path

from epcli.core.errors import UsageError
from epcli.motifs import files, jaspar
from epcli.motifs.pwm import DEFAULT_MOTIFS, MotifSet


def load_motifs(spec: str | os.PathLike = DEFAULT_MOTIFS) -> MotifSet:
    """Load a motif set from a JASPAR release name or a motif file.

    Parameters
    ----------
    spec : str or path
        ``jaspar2024`` / ``jaspar2026`` (CORE vertebrates, non-redundant), or
        ``jaspar:RELEASE[:COLLECTION[:TAXON]]`` (e.g. ``jaspar:2022:CORE:plants``), or the
        path of a JASPAR (``>ID NAME`` then ``A [ ... ]`` rows) or MEME motif file.

    Returns
    -------
    MotifSet

    Raises
    ------
    UsageError
        Unknown release, collection or taxon; a file that does not exist.
    EpcliError
        A file that cannot be parsed (with its line).
    """
    text = str(spec)
    low = text.lower()
    if low.startswith("jaspar") and not Path(text).exists():
        rest = low[len("jaspar") :].lstrip(":")
        parts = [p for p in rest.split(":")] if rest else []
        release = parts[0] if parts and parts[0] else "2024"
        collection = parts[1].upper() if len(parts) > 1 and parts[1] else "CORE"
        taxon = parts[2] if len(parts) > 2 and parts[2] else "vertebrates"
        return jaspar.load_jaspar(release, collection, taxon)
    path = Path(text)
    if not path.is_file():
        raise UsageError(
            f"motif set {text!r} is neither a JASPAR release nor a file",
            hint="use jaspar2024, jaspar2026, jaspar:RELEASE:COLLECTION:TAXON, or a JASPAR/"
            "MEME motif file",
        )
    return files.read_motif_file(path)
