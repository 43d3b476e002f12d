"""The HDF5 pair dataset (DESIGN §2): writer and reader.

Layout::

    /enhancers/seq           (n_enh, Le) uint8, chunked + gzip; base codes A,C,G,T,N = 0..4
    /enhancers/chrom_idx     (n_enh,) int16 into attrs["chroms"]
    /enhancers/start, end    (n_enh,) int64, the original anchor interval
    /promoters/...           the same for promoters, (n_pro, Lp)
    /pairs/enh_idx, pro_idx  (n_pairs,) int32 rows of the anchor tables
    /pairs/distance          (n_pairs,) int64, |promoter mid - enhancer mid|
    /pairs/cell_idx          (n_pairs,) int16 into attrs["cells"] (-1 unknown)
    /pairs/label             (n_pairs,) int8 (1, 0, -1 unknown)
    /pairs/start1 ... end2   original coordinates; chrom1/chrom2, name, score, strand1/2 as text
    /pairs/line              source line of each pair
    /pairs/extra/<column>    other input columns, as text

Attributes: format, format_version, enhancer_window, promoter_window, genome_name,
genome_fingerprint, epcli_version, chroms, cells, extra_columns, source, n_padded_windows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from epcli import __version__
from epcli.core import schema
from epcli.core.arrays import PairData
from epcli.core.errors import EpcliError
from epcli.core.pairs import midpoint, midpoints

_STR = h5py.string_dtype(encoding="utf-8")
_SEQ_CHUNK_ROWS = 64
_GZIP_LEVEL = 4
_ANCHOR_KINDS = (("enhancer", schema.H5_ENH), ("promoter", schema.H5_PRO))


def _resizable(group: h5py.Group, name: str, dtype, width: int | None = None, chunk=4096):
    shape = (0,) if width is None else (0, width)
    maxshape = (None,) if width is None else (None, width)
    chunks = (chunk,) if width is None else (_SEQ_CHUNK_ROWS, width)
    kw = {"compression": "gzip", "compression_opts": _GZIP_LEVEL}
    return group.create_dataset(
        name, shape=shape, maxshape=maxshape, dtype=dtype, chunks=chunks, **kw
    )


def _append(ds: h5py.Dataset, values: np.ndarray | list) -> None:
    n = len(values)
    if n == 0:
        return
    old = ds.shape[0]
    ds.resize(old + n, axis=0)
    ds[old : old + n] = values


def index_anchors(
    index: dict[tuple[str, int, int], int], chrom: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, list[int]]:
    """Row of each anchor in a de-duplicating ``index`` (chrom, start, end) -> row.

    Parameters
    ----------
    index : dict
        Updated in place: new anchors get the next free rows.
    chrom, start, end : np.ndarray, shape (n,)
        Anchor intervals.

    Returns
    -------
    rows : np.ndarray, shape (n,), int64
    new : list of int
        Positions (into the inputs) of the first occurrence of each new anchor, in the
        order their rows were assigned.
    """
    rows = np.empty(len(chrom), dtype=np.int64)
    new: list[int] = []
    for i, key in enumerate(zip(chrom, start.tolist(), end.tolist(), strict=True)):
        r = index.get(key)
        if r is None:
            r = index[key] = len(index)
            new.append(i)
        rows[i] = r
    return rows, new


class DatasetWriter:
    """Append validated pair chunks to a new HDF5 dataset.

    Parameters
    ----------
    path : path-like
        File to create (the caller handles atomic renaming).
    enhancer_window, promoter_window : int
        Window lengths in bp.
    genome_name, genome_fingerprint : str
        Recorded as attributes.
    extra_columns : sequence of str
        Input columns beyond the standard ones, ``cell`` and ``label``, stored as text.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        enhancer_window: int,
        promoter_window: int,
        genome_name: str,
        genome_fingerprint: str,
        extra_columns: Sequence[str] = (),
        source: str = "",
    ) -> None:
        self.h5 = h5py.File(path, "w")
        self.windows = {"enhancer": enhancer_window, "promoter": promoter_window}
        self.chroms: dict[str, int] = {}
        self.cells: dict[str, int] = {}
        self.anchor_index: dict[str, dict[tuple[str, int, int], int]] = {
            "enhancer": {},
            "promoter": {},
        }
        self.extra_columns = list(extra_columns)
        self.n_pairs = 0
        h5 = self.h5
        h5.attrs.update(
            {
                "format": schema.H5_FORMAT,
                "format_version": schema.H5_FORMAT_VERSION,
                "enhancer_window": enhancer_window,
                "promoter_window": promoter_window,
                "genome_name": genome_name,
                "genome_fingerprint": genome_fingerprint,
                "epcli_version": __version__,
                "source": source,
            }
        )
        for kind, gname in _ANCHOR_KINDS:
            g = h5.create_group(gname)
            _resizable(g, "seq", np.uint8, width=self.windows[kind])
            _resizable(g, "chrom_idx", np.int16)
            _resizable(g, "start", np.int64)
            _resizable(g, "end", np.int64)
        g = h5.create_group(schema.H5_PAIRS)
        for name, dtype in schema.H5_PAIR_NUMERIC.items():
            _resizable(g, name, np.dtype(dtype))
        for name in schema.H5_PAIR_TEXT:
            _resizable(g, name, _STR)
        ge = g.create_group("extra")
        for name in self.extra_columns:
            _resizable(ge, name, _STR)

    def chrom_id(self, chrom: str) -> int:
        """Index of ``chrom`` in the dataset's chromosome list (added when new)."""
        i = self.chroms.get(chrom)
        if i is None:
            i = self.chroms[chrom] = len(self.chroms)
        return i

    def anchor_rows(
        self, kind: str, chrom: np.ndarray, start: np.ndarray, end: np.ndarray
    ) -> tuple[np.ndarray, list[int]]:
        """Rows of each anchor in the ``kind`` table, registering new ones (see
        :func:`index_anchors`)."""
        return index_anchors(self.anchor_index[kind], chrom, start, end)

    def add_anchors(
        self, kind: str, chrom: Sequence[str], start: np.ndarray, end: np.ndarray, seqs: np.ndarray
    ) -> None:
        """Append new anchors' intervals and window codes ``seqs`` (n, L) uint8."""
        g = self.h5[dict(_ANCHOR_KINDS)[kind]]
        _append(g["seq"], seqs)
        _append(g["chrom_idx"], np.array([self.chrom_id(c) for c in chrom], dtype=np.int16))
        _append(g["start"], np.asarray(start, dtype=np.int64))
        _append(g["end"], np.asarray(end, dtype=np.int64))

    def add_pairs(self, df: pd.DataFrame, enh_rows: np.ndarray, pro_rows: np.ndarray) -> None:
        """Append pairs of a validated BEDPE chunk (:func:`~epcli.io.bedpe.iter_bedpe_chunks`)."""
        g = self.h5[schema.H5_PAIRS]
        cells = df[schema.COL_CELL].tolist()
        cell_idx = np.empty(len(cells), dtype=np.int16)
        for i, c in enumerate(cells):
            if c == schema.MISSING:
                cell_idx[i] = -1
                continue
            j = self.cells.get(c)
            if j is None:
                j = self.cells[c] = len(self.cells)
            cell_idx[i] = j
        e_mid, p_mid = midpoints(df)
        numeric = {
            "enh_idx": enh_rows,
            "pro_idx": pro_rows,
            "distance": np.abs(p_mid - e_mid),
            "cell_idx": cell_idx,
            "label": df[schema.COL_LABEL].to_numpy(np.int8),
            "start1": df["start1"].to_numpy(),
            "end1": df["end1"].to_numpy(),
            "start2": df["start2"].to_numpy(),
            "end2": df["end2"].to_numpy(),
            "line": df["_line"].to_numpy(),
        }
        for name, values in numeric.items():
            _append(g[name], values)
        for name in schema.H5_PAIR_TEXT:
            _append(g[name], df[name].astype(str).tolist())
        for name in self.extra_columns:
            _append(g["extra"][name], df[name].astype(str).tolist())
        self.n_pairs += len(df)

    def close(self, **attrs: object) -> None:
        """Record the chromosome and cell lists (and ``attrs``) and close the file."""
        h5 = self.h5
        h5.attrs["chroms"] = np.array(list(self.chroms), dtype=object).astype(_STR)
        h5.attrs["cells"] = np.array(list(self.cells), dtype=object).astype(_STR)
        h5.attrs["extra_columns"] = np.array(self.extra_columns, dtype=object).astype(_STR)
        h5.attrs["n_pairs"] = self.n_pairs
        for k, v in attrs.items():
            h5.attrs[k] = v
        h5.close()

    def abort(self) -> None:
        """Close without finishing (the caller removes the file)."""
        if self.h5.id.valid:
            self.h5.close()


def _strs(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


@dataclass
class DatasetInfo:
    """Attributes of a dataset file."""

    path: Path
    n_pairs: int
    enhancer_window: int
    promoter_window: int
    genome_name: str
    genome_fingerprint: str
    cells: list[str]
    chroms: list[str]
    extra_columns: list[str]
    epcli_version: str
    n_enhancers: int
    n_promoters: int


class Dataset:
    """Read an epcli HDF5 dataset.

    Parameters
    ----------
    path : path-like
        File written by ``epcli prepare``.

    Raises
    ------
    EpcliError
        If the file is missing, not HDF5, or not an epcli dataset of a known version.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise EpcliError("dataset not found", path=self.path)
        if self.path.is_dir():
            raise EpcliError("dataset path is a directory, expected an HDF5 file", path=self.path)
        try:
            self.h5 = h5py.File(self.path, "r")
        except OSError:
            with open(self.path, "rb") as fh:
                signed = fh.read(8) == b"\x89HDF\r\n\x1a\n"
            raise EpcliError(
                "truncated or corrupt HDF5 file" if signed else "not an HDF5 file",
                path=self.path,
                hint="make the dataset again with 'epcli prepare PAIRS --genome FASTA -o OUT.h5'",
            ) from None
        with _reading(self.path, self.h5):
            self._read_info()

    def _read_info(self) -> None:
        a = self.h5.attrs
        if a.get("format") != schema.H5_FORMAT:
            self.h5.close()
            raise EpcliError(
                "HDF5 file is not an epcli pair dataset",
                path=self.path,
                hint="make it with 'epcli prepare'",
            )
        version = int(a["format_version"])
        if version > schema.H5_FORMAT_VERSION:
            self.h5.close()
            raise EpcliError(
                f"dataset format version {version} is newer than this epcli understands "
                f"({schema.H5_FORMAT_VERSION})",
                path=self.path,
                hint="upgrade epcli",
            )
        self.info = DatasetInfo(
            path=self.path,
            n_pairs=int(a["n_pairs"]),
            enhancer_window=int(a["enhancer_window"]),
            promoter_window=int(a["promoter_window"]),
            genome_name=str(a["genome_name"]),
            genome_fingerprint=str(a["genome_fingerprint"]),
            cells=_strs(a["cells"]),
            chroms=_strs(a["chroms"]),
            extra_columns=_strs(a["extra_columns"]),
            epcli_version=str(a["epcli_version"]),
            n_enhancers=int(self.h5[schema.H5_ENH]["seq"].shape[0]),
            n_promoters=int(self.h5[schema.H5_PRO]["seq"].shape[0]),
        )

    def close(self) -> None:
        """Close the file."""
        self.h5.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def anchors(self, kind: str) -> pd.DataFrame:
        """Unique anchors of ``kind`` ("enhancer"/"promoter"): chrom, start, end (original)."""
        with _reading(self.path):
            return self._anchors(kind)

    def pairs_frame(self) -> pd.DataFrame:
        """Pairs as a BEDPE frame: ten standard columns, cell, label, extras."""
        with _reading(self.path):
            return self._pairs_frame()

    def load(self) -> PairData:
        """All pairs and their anchor windows in memory (indices checked).

        Returns
        -------
        PairData
            ``enh_seqs`` (n_enh, Le) and ``pro_seqs`` (n_pro, Lp) uint8, per-pair arrays.
        """
        with _reading(self.path):
            data = self._load()
        n_cells = len(data.cells)
        for name, arr, lo, hi in (
            ("enh_idx", data.enh_idx, 0, data.enh_seqs.shape[0]),
            ("pro_idx", data.pro_idx, 0, data.pro_seqs.shape[0]),
            ("cell_idx", data.cell_idx, -1, n_cells),
            ("label", data.label, -1, 2),
        ):
            if arr.size and (arr.min() < lo or arr.max() >= hi):
                raise EpcliError(
                    f"corrupt epcli dataset: pairs/{name} holds values outside [{lo}, {hi})",
                    path=self.path,
                    hint="make the dataset again with 'epcli prepare'",
                )
        return data

    def _anchors(self, kind: str) -> pd.DataFrame:
        """Unique anchors of ``kind`` ("enhancer"/"promoter"): chrom, start, end (original)."""
        g = self.h5[dict(_ANCHOR_KINDS)[kind]]
        chroms = np.array(self.info.chroms, dtype=object)
        return pd.DataFrame(
            {
                "chrom": chroms[g["chrom_idx"][:]] if len(chroms) else [],
                "start": g["start"][:],
                "end": g["end"][:],
            }
        )

    def _pairs_frame(self) -> pd.DataFrame:
        g = self.h5[schema.H5_PAIRS]
        cells = np.array(self.info.cells + [schema.MISSING], dtype=object)
        cidx = g["cell_idx"][:].astype(np.int64)
        data: dict[str, object] = {}
        for name in schema.BEDPE_STANDARD:
            if name in schema.BEDPE_INT_COLS:
                data[name] = g[name][:]
            else:
                data[name] = _strs(g[name][:])
        data[schema.COL_CELL] = cells[cidx]
        data[schema.COL_LABEL] = g["label"][:]
        for name in self.info.extra_columns:
            data[name] = _strs(g["extra"][name][:])
        return pd.DataFrame(data)

    def _load(self) -> PairData:
        g = self.h5[schema.H5_PAIRS]
        chroms = np.array(self.info.chroms, dtype=object)
        enh_chrom_idx = self.h5[schema.H5_ENH]["chrom_idx"][:]
        enh_idx = g["enh_idx"][:].astype(np.int64)
        e_mid = midpoint(g["start1"][:], g["end1"][:])
        p_mid = midpoint(g["start2"][:], g["end2"][:])
        return PairData(
            enh_seqs=self.h5[schema.H5_ENH]["seq"][:],
            pro_seqs=self.h5[schema.H5_PRO]["seq"][:],
            enh_idx=enh_idx,
            pro_idx=g["pro_idx"][:].astype(np.int64),
            distance=g["distance"][:].astype(np.int64),
            cell_idx=g["cell_idx"][:].astype(np.int64),
            label=g["label"][:].astype(np.int8),
            chrom=chroms[enh_chrom_idx[enh_idx]] if len(chroms) else np.array([], dtype=object),
            enh_mid=e_mid.astype(np.int64),
            pro_mid=p_mid.astype(np.int64),
            cells=list(self.info.cells),
        )


@contextlib.contextmanager
def _reading(path: Path, h5: h5py.File | None = None):
    """Turn h5py's errors on a damaged file into one clear :class:`EpcliError`."""
    try:
        yield
    except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        if h5 is not None:
            h5.close()
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise EpcliError(
            f"truncated or corrupt epcli dataset ({first})",
            path=path,
            hint="make the dataset again with 'epcli prepare'",
        ) from None


def read_anchor_table(path: str | os.PathLike) -> pd.DataFrame:
    """Unique anchors of a dataset: columns kind ("enhancer"/"promoter"), chrom, start, end."""
    with Dataset(path) as ds:
        parts = []
        for kind, _ in _ANCHOR_KINDS:
            t = ds.anchors(kind)
            t.insert(0, "kind", kind)
            parts.append(t)
    return pd.concat(parts, ignore_index=True)


def load_pairdata(paths: Sequence[str | os.PathLike]) -> tuple[PairData, list[DatasetInfo]]:
    """Load and merge several datasets (their windows must agree).

    Returns
    -------
    PairData
        Anchor tables stacked, pair indices offset, cells merged by name.
    list of DatasetInfo
        One per file.
    """
    datas: list[PairData] = []
    infos: list[DatasetInfo] = []
    for p in paths:
        with Dataset(p) as ds:
            infos.append(ds.info)
            datas.append(ds.load())
    first = infos[0]
    for info in infos[1:]:
        if (info.enhancer_window, info.promoter_window) != (
            first.enhancer_window,
            first.promoter_window,
        ):
            raise EpcliError(
                f"windows differ between datasets: {first.path} has enhancer/promoter windows "
                f"{first.enhancer_window}/{first.promoter_window} bp, {info.path} has "
                f"{info.enhancer_window}/{info.promoter_window} bp",
                hint="prepare all datasets with the same --enhancer-window/--promoter-window",
            )
    if len(datas) == 1:
        return datas[0], infos
    cells: list[str] = []
    for d in datas:
        cells += [c for c in d.cells if c not in cells]
    e_off = np.cumsum([0] + [d.enh_seqs.shape[0] for d in datas])
    p_off = np.cumsum([0] + [d.pro_seqs.shape[0] for d in datas])

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(d, name) for d in datas])

    cell_idx = []
    for d in datas:
        remap = np.array([cells.index(c) for c in d.cells] + [-1], dtype=np.int64)
        cell_idx.append(remap[d.cell_idx])  # -1 indexes the trailing -1
    merged = PairData(
        enh_seqs=np.concatenate([d.enh_seqs for d in datas]),
        pro_seqs=np.concatenate([d.pro_seqs for d in datas]),
        enh_idx=np.concatenate([d.enh_idx + e_off[i] for i, d in enumerate(datas)]),
        pro_idx=np.concatenate([d.pro_idx + p_off[i] for i, d in enumerate(datas)]),
        distance=cat("distance"),
        cell_idx=np.concatenate(cell_idx),
        label=cat("label"),
        chrom=cat("chrom"),
        enh_mid=cat("enh_mid"),
        pro_mid=cat("pro_mid"),
        cells=cells,
    )
    return merged, infos
