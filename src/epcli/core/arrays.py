"""In-memory pair data shared by training, adaptation and prediction.

The HDF5 reader (:mod:`epcli.io.hdf5`) and the BEDPE+FASTA path both produce a
:class:`PairData`; the model code consumes it and knows nothing of files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Base codes stored in datasets: A, C, G, T, N.
BASES = "ACGTN"
CODE_N = 4


@dataclass
class PairData:
    """Pairs indexing into de-duplicated anchor windows.

    Attributes
    ----------
    enh_seqs : np.ndarray, shape (n_enh, Le), uint8
        Unique enhancer windows as base codes 0..4 (A, C, G, T, N).
    pro_seqs : np.ndarray, shape (n_pro, Lp), uint8
        Unique promoter windows.
    enh_idx : np.ndarray, shape (n_pairs,), int64
        Row of ``enh_seqs`` for each pair.
    pro_idx : np.ndarray, shape (n_pairs,), int64
        Row of ``pro_seqs`` for each pair.
    distance : np.ndarray, shape (n_pairs,), int64
        Distance in bp between the anchor midpoints.
    cell_idx : np.ndarray, shape (n_pairs,), int64
        Index into ``cells`` (-1 when the cell is unknown).
    label : np.ndarray, shape (n_pairs,), int8
        1, 0, or -1 for unknown.
    chrom : np.ndarray, shape (n_pairs,), object
        Chromosome of the pair (pairs are cis).
    enh_mid, pro_mid : np.ndarray, shape (n_pairs,), int64
        Anchor midpoints (0-based), for genome-block splits and leakage audits.
    cells : list of str
        Cell line names.
    """

    enh_seqs: np.ndarray
    pro_seqs: np.ndarray
    enh_idx: np.ndarray
    pro_idx: np.ndarray
    distance: np.ndarray
    cell_idx: np.ndarray
    label: np.ndarray
    chrom: np.ndarray
    enh_mid: np.ndarray
    pro_mid: np.ndarray
    cells: list[str] = field(default_factory=list)

    @property
    def n_pairs(self) -> int:
        """Number of pairs."""
        return int(self.enh_idx.shape[0])

    def subset(self, rows: np.ndarray) -> PairData:
        """Pairs ``rows`` (indices or boolean mask); anchor arrays are shared, not copied."""
        return PairData(
            enh_seqs=self.enh_seqs,
            pro_seqs=self.pro_seqs,
            enh_idx=self.enh_idx[rows],
            pro_idx=self.pro_idx[rows],
            distance=self.distance[rows],
            cell_idx=self.cell_idx[rows],
            label=self.label[rows],
            chrom=self.chrom[rows],
            enh_mid=self.enh_mid[rows],
            pro_mid=self.pro_mid[rows],
            cells=list(self.cells),
        )


def log_distance(distance: np.ndarray) -> np.ndarray:
    """The distance feature every model uses: ``log10(1 + distance / 1000)``, float32."""
    return np.log10(1.0 + np.asarray(distance, dtype=np.float64) / 1000.0).astype(np.float32)
