"""Motifs as count matrices, and their log-odds form for scanning.

A :class:`Motif` holds a position frequency (count) matrix ``(4, k)`` over A, C, G, T. A
:class:`MotifSet` is an ordered list of them with the provenance recorded in a model
directory (source, release, collection, taxon, IDs, names and a checksum of the matrices).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from epcli.core.errors import EpcliError, UsageError

#: The default motif set: JASPAR 2024 CORE vertebrates, non-redundant (latest version of each
#: matrix base ID), 879 matrices. 2024 rather than 2026: its 879 matrices are the set the
#: motif prior was measured with, and scanning 16% fewer matrices keeps CPU training fast;
#: ``--motifs jaspar2026`` selects the newer release (1,019 matrices).
DEFAULT_MOTIFS = "jaspar2024"

#: Background base frequencies (A, C, G, T) of the human genome (41% GC).
DEFAULT_BACKGROUND: tuple[float, float, float, float] = (0.295, 0.205, 0.205, 0.295)

#: Pseudocount added to each column (spread by the background), in counts.
PSEUDOCOUNT = 0.8

#: Columns whose counts sum below this are frequencies; they are read as this many sites.
_FREQ_SITES = 100.0

#: Specific (non-N) positions a motif's core consensus needs (:meth:`Motif.iupac`).
CORE_MIN_SPECIFIC = 5


#: IUPAC code of each set of allowed bases, keyed by the bits A=1, C=2, G=4, T=8.
_IUPAC = dict(
    zip((1, 2, 4, 8, 5, 10, 6, 9, 12, 3, 14, 13, 11, 7, 15), "ACGTRYSWKMBDHVN", strict=True)
)


def iupac_string(allowed) -> str:
    """The IUPAC letters of a consensus given as allowed bases.

    Parameters
    ----------
    allowed : array-like, shape (4, k)
        Non-zero where base A, C, G or T is allowed at a position (:meth:`Motif.iupac`);
        a position that allows none is written ``-``.

    Returns
    -------
    str
        Of length k, e.g. ``"GAAANNGAAA"``.
    """
    a = np.asarray(allowed) != 0
    bits = (a * np.array([1, 2, 4, 8])[:, None]).sum(axis=0)
    return "".join(_IUPAC.get(int(b), "-") for b in bits)


@dataclass(frozen=True)
class Motif:
    """One TF binding motif.

    Attributes
    ----------
    id : str
        Matrix ID (e.g. ``MA0099.4``), or the name when a file gives none.
    name : str
        TF name (e.g. ``FOS::JUN``).
    counts : np.ndarray, shape (4, k), float64
        Counts (or frequencies) of A, C, G, T at each of the k positions.
    """

    id: str
    name: str
    counts: np.ndarray = field(repr=False)

    @property
    def length(self) -> int:
        """Number of positions k."""
        return int(self.counts.shape[1])

    def probabilities(self, background=DEFAULT_BACKGROUND, pseudocount=PSEUDOCOUNT) -> np.ndarray:
        """Base probabilities with a pseudocount spread by the background.

        Returns
        -------
        np.ndarray, shape (4, k), float64
            Columns sum to 1.
        """
        c = np.asarray(self.counts, dtype=np.float64)
        tot = c.sum(axis=0, keepdims=True)
        c = np.where(tot < 2.0, c / np.maximum(tot, 1e-12) * _FREQ_SITES, c)
        bg = np.asarray(background, dtype=np.float64)[:, None]
        c = c + pseudocount * bg
        return c / c.sum(axis=0, keepdims=True)

    def log_odds(self, background=DEFAULT_BACKGROUND, pseudocount=PSEUDOCOUNT) -> np.ndarray:
        """Log-odds (bits) of each base at each position against the background.

        Returns
        -------
        np.ndarray, shape (4, k), float64
            ``log2(p[b, j] / background[b])``.
        """
        p = self.probabilities(background, pseudocount)
        return np.log2(p / np.asarray(background, dtype=np.float64)[:, None])

    def consensus(self) -> str:
        """Most frequent base at each position (ties: the first of A, C, G, T)."""
        return "".join("ACGT"[i] for i in np.argmax(self.counts, axis=0))

    def iupac(self, core: int | None = None) -> np.ndarray:
        """IUPAC consensus as allowed bases (Cavener's rules), N-trimmed at both ends.

        A column is one base when its frequency exceeds 0.5 and twice the second's, the
        two-base code (e.g. R = A/G) when the top two exceed 0.75 together, else N (any base).
        Leading and trailing N columns are dropped.

        Parameters
        ----------
        core : int, optional
            Only the ``core`` consecutive columns of highest total information content (the
            motif's core, as literature consensus sites such as CCAAT or TGACGTCA often
            are; the whole matrix when it is not longer), and only when at least
            :data:`CORE_MIN_SPECIFIC` of them are specific (otherwise an empty consensus:
            a short degenerate core would match almost everywhere).

        Returns
        -------
        np.ndarray, shape (4, k'), bool
            True where a base is allowed; k' = 0 when every column is N.
        """
        c = np.asarray(self.counts, dtype=np.float64)
        f = c / np.maximum(c.sum(axis=0, keepdims=True), 1e-12)
        out = np.ones((4, f.shape[1]), dtype=bool)
        specific = np.zeros(f.shape[1], dtype=bool)
        for j, col in enumerate(f.T):
            o = np.argsort(-col, kind="stable")
            if col[o[0]] > 0.5 and col[o[0]] > 2 * col[o[1]]:
                out[:, j] = False
                out[o[0], j] = True
            elif col[o[0]] + col[o[1]] > 0.75:
                out[:, j] = False
                out[o[:2], j] = True
            else:
                continue
            specific[j] = True
        if core is not None and f.shape[1] > core:
            ic = 2.0 + (f * np.log2(np.where(f > 0, f, 1.0))).sum(axis=0)
            a = int(np.argmax(np.convolve(ic, np.ones(core), mode="valid")))
            out, specific = out[:, a : a + core], specific[a : a + core]
        if core is not None and specific.sum() < CORE_MIN_SPECIFIC:
            return out[:, :0]
        if not specific.any():
            return out[:, :0]
        lo, hi = np.flatnonzero(specific)[[0, -1]]
        return out[:, lo : hi + 1]


@dataclass
class MotifSet:
    """An ordered set of motifs and where it came from.

    Attributes
    ----------
    motifs : list of Motif
    source : str
        ``"jaspar"`` or ``"file"``.
    release, collection, taxon : str or None
        JASPAR release (``"JASPAR2024"``), collection (``"CORE"``) and taxonomic group.
    path : str or None
        File name for ``source == "file"``.
    background : tuple of 4 floats
    """

    motifs: list[Motif]
    source: str
    release: str | None = None
    collection: str | None = None
    taxon: str | None = None
    path: str | None = None
    background: tuple[float, float, float, float] = DEFAULT_BACKGROUND

    def __len__(self) -> int:
        return len(self.motifs)

    @property
    def ids(self) -> list[str]:
        """Matrix IDs, in order."""
        return [m.id for m in self.motifs]

    @property
    def names(self) -> list[str]:
        """TF names, in order."""
        return [m.name for m in self.motifs]

    @property
    def max_length(self) -> int:
        """Length of the longest motif."""
        return max(m.length for m in self.motifs)

    def checksum(self) -> str:
        """SHA-256 (first 16 hex digits) of the IDs, names and matrices (rounded to 1e-3)."""
        h = hashlib.sha256()
        for m in self.motifs:
            h.update(f"{m.id}\t{m.name}\t{m.length}\n".encode())
            h.update(np.round(np.asarray(m.counts, dtype=np.float64), 3).tobytes())
        return h.hexdigest()[:16]

    def log_odds_tensor(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All log-odds matrices padded to the longest motif.

        Returns
        -------
        weights : np.ndarray, shape (M, 4, K), float32
            Forward-strand log-odds (bits); positions past a motif's end are 0.
        lengths : np.ndarray, shape (M,), int64
        score_range : np.ndarray, shape (M, 2), float32
            Lowest and highest possible score of each motif (for relative scores).
        """
        k = self.max_length
        w = np.zeros((len(self.motifs), 4, k), dtype=np.float32)
        lengths = np.zeros(len(self.motifs), dtype=np.int64)
        rng = np.zeros((len(self.motifs), 2), dtype=np.float32)
        for i, m in enumerate(self.motifs):
            lo = m.log_odds(self.background)
            w[i, :, : m.length] = lo
            lengths[i] = m.length
            rng[i] = (lo.min(axis=0).sum(), lo.max(axis=0).sum())
        return w, lengths, rng

    def consensus_tensor(self, core: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """All IUPAC consensus matrices (:meth:`Motif.iupac`, of the ``core`` when given)
        padded to the longest motif.

        Returns
        -------
        allowed : np.ndarray, shape (M, 4, K), float32
            1 where the consensus allows a base; positions past its end are 0.
        lengths : np.ndarray, shape (M,), int64
            Consensus lengths (0: no consensus, such a motif never matches).
        """
        w = np.zeros((len(self.motifs), 4, self.max_length), dtype=np.float32)
        lengths = np.zeros(len(self.motifs), dtype=np.int64)
        for i, m in enumerate(self.motifs):
            a = m.iupac(core)
            w[i, :, : a.shape[1]] = a
            lengths[i] = a.shape[1]
        return w, lengths

    def describe(self) -> dict[str, Any]:
        """Provenance for config.json and the model card (IDs and names in order)."""
        return {
            "source": self.source,
            "release": self.release,
            "collection": self.collection,
            "taxon": self.taxon,
            "path": self.path,
            "n_motifs": len(self.motifs),
            "checksum": self.checksum(),
            "background": list(self.background),
            "pseudocount": PSEUDOCOUNT,
            "ids": self.ids,
            "names": self.names,
        }

    def subset(self, ids: list[str]) -> MotifSet:
        """The motifs with these IDs (in the given order).

        Raises
        ------
        UsageError
            Naming an ID that is not in the set.
        """
        by_id = {m.id: m for m in self.motifs}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise UsageError(f"motif ID(s) not in the motif set: {', '.join(missing[:5])}")
        return MotifSet(
            [by_id[i] for i in ids],
            self.source,
            self.release,
            self.collection,
            self.taxon,
            self.path,
            self.background,
        )


def check_motif_set(ms: MotifSet, where: str | os.PathLike | None = None) -> None:
    """Reject an empty set or duplicate IDs.

    Raises
    ------
    EpcliError
    """
    if not ms.motifs:
        raise EpcliError("the motif set holds no motifs", path=where)
    seen: set[str] = set()
    for m in ms.motifs:
        if m.id in seen:
            raise EpcliError(
                f"motif ID {m.id!r} occurs twice", path=where, hint="IDs must be unique"
            )
        seen.add(m.id)
