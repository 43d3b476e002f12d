"""Pairs to score or adapt on: a BEDPE (with a genome FASTA) or a prepared HDF5 dataset.

Both give ``(frame, PairData)`` chunks: ``frame`` holds the input rows as BEDPE columns (for
writing them back), ``PairData`` the de-duplicated anchor windows the models consume.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from epcli.core import schema
from epcli.core.arrays import PairData
from epcli.core.errors import EpcliError, UsageError
from epcli.core.pairs import midpoints
from epcli.io.bedpe import BedpeLayout, check_cell_name, iter_bedpe_chunks
from epcli.io.files import STDIO, display_name, open_text_input
from epcli.io.genome import Genome
from epcli.io.hdf5 import Dataset
from epcli.io.windows import pairdata_from_frame

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path: str | os.PathLike) -> bool:
    """True when ``path`` is an HDF5 file (by its signature, not its name)."""
    if str(path) == STDIO:
        return False
    p = Path(path)
    if not p.is_file():
        return False
    with open(p, "rb") as fh:
        return fh.read(8) == _HDF5_MAGIC


def parse_shard(text: str | None, env: dict[str, str] | None = None) -> tuple[int, int] | None:
    """``"I/N"`` (1-based) -> ``(I, N)``; None stays None.

    ``"auto"`` takes the shard from the launcher: ``RANK``/``WORLD_SIZE`` (torchrun) or
    ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_MIN``/``SLURM_ARRAY_TASK_COUNT`` (a SLURM
    array).

    Raises
    ------
    UsageError
        Unless 1 <= I <= N, or when ``auto`` finds no launcher variables.
    """
    if text is None:
        return None
    if text == "auto":
        env = dict(os.environ) if env is None else env
        try:
            if "WORLD_SIZE" in env:
                return int(env.get("RANK", "0")) + 1, int(env["WORLD_SIZE"])
            if "SLURM_ARRAY_TASK_COUNT" in env:
                first = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
                i = int(env["SLURM_ARRAY_TASK_ID"]) - first + 1
                return parse_shard(f"{i}/{int(env['SLURM_ARRAY_TASK_COUNT'])}")
        except (KeyError, ValueError):
            raise UsageError("--shard auto: malformed launcher variables") from None
        raise UsageError(
            "--shard auto needs torchrun (RANK, WORLD_SIZE) or a SLURM array "
            "(SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT)",
            hint="or give the shard as I/N",
        )
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise UsageError(f"--shard must look like I/N (e.g. 3/10), got {text!r}") from None
    if not 1 <= i <= n:
        raise UsageError(f"--shard {text}: I must be between 1 and N")
    return i, n


def shard_range(n_rows: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of the I-th of N contiguous, near-equal parts of ``n_rows`` rows."""
    if shard is None:
        return 0, n_rows
    i, n = shard
    return (i - 1) * n_rows // n, i * n_rows // n


def count_bedpe_rows(path: str | os.PathLike) -> int:
    """Number of data lines of a BEDPE file (comments, track lines and blanks excluded)."""
    n = 0
    with open_text_input(path) as fh:
        for line in fh:
            s = line.strip()
            if s and not s.startswith(("#", "track", "browser")):
                n += 1
    return n


def _no_sequence(df: pd.DataFrame, cells: list[str] | None) -> PairData:
    """PairData without windows, for the distance-only model (no genome needed)."""
    n = len(df)
    e_mid, p_mid = midpoints(df)
    names = list(cells or [])
    for c in pd.unique(df[schema.COL_CELL]):
        if c != schema.MISSING and c not in names:
            names.append(c)
    lookup = {c: i for i, c in enumerate(names)}
    return PairData(
        enh_seqs=np.zeros((0, 0), np.uint8),
        pro_seqs=np.zeros((0, 0), np.uint8),
        enh_idx=np.zeros(n, np.int64),
        pro_idx=np.zeros(n, np.int64),
        distance=np.abs(p_mid - e_mid).astype(np.int64),
        cell_idx=np.array([lookup.get(c, -1) for c in df[schema.COL_CELL]], dtype=np.int64),
        label=df[schema.COL_LABEL].to_numpy(np.int8),
        chrom=df["chrom1"].to_numpy(dtype=object),
        enh_mid=e_mid.astype(np.int64),
        pro_mid=p_mid.astype(np.int64),
        cells=names,
    )


@dataclass
class PairsInput:
    """Where pairs come from and how to turn them into model input.

    Parameters
    ----------
    path : path-like
        BEDPE (file, .gz or ``-``) or HDF5 dataset.
    genome : path-like, optional
        Genome FASTA; required for a BEDPE unless ``needs_sequence`` is False.
    windows : dict
        ``{"enhancer": Le, "promoter": Lp}`` the model expects.
    needs_sequence : bool
        False for the distance-only model.
    cell : str, optional
        Cell line of every pair (``--cell``).
    """

    path: str | os.PathLike
    genome: str | os.PathLike | None
    windows: dict[str, int]
    needs_sequence: bool = True
    cell: str | None = None

    def __post_init__(self) -> None:
        check_cell_name(self.cell)
        self.hdf5 = is_hdf5(self.path)
        self.where = display_name(self.path)
        if not self.hdf5 and self.needs_sequence and self.genome is None:
            raise UsageError(
                f"{self.where} is a BEDPE file, so --genome is needed to read the anchors' "
                "sequence",
                hint="pass --genome FASTA, or give a dataset made by epcli prepare",
            )
        self._genome: Genome | None = None
        if not self.hdf5 and self.needs_sequence:
            self._genome = Genome(self.genome)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the genome file."""
        if self._genome is not None:
            self._genome.close()

    def layout(self, first: pd.DataFrame) -> BedpeLayout:
        """The input's column layout (HDF5: the standard columns + its stored extras)."""
        if "layout" in first.attrs:
            return first.attrs["layout"]
        cols = list(schema.BEDPE_STANDARD) + [
            c for c in first.columns if c not in schema.BEDPE_STANDARD
        ]
        return BedpeLayout(cols, True)

    def count(self, shard: tuple[int, int] | None = None) -> int | None:
        """Number of pairs that :meth:`chunks` will yield (None for stdin: unknown ahead).

        A BEDPE file is read once to count its lines (cheap beside scoring them).
        """
        if self.hdf5:
            with Dataset(self.path) as ds:
                n = ds.info.n_pairs
        elif str(self.path) == STDIO:
            return None
        else:
            n = count_bedpe_rows(self.path)
        lo, hi = shard_range(n, shard)
        return hi - lo

    def chunks(
        self, chunk_size: int = 100_000, shard: tuple[int, int] | None = None
    ) -> Iterator[tuple[pd.DataFrame, PairData]]:
        """Yield ``(frame, PairData)`` for consecutive input rows (only the shard's rows).

        Each chunk's unique anchors are fetched once; memory is bounded by ``chunk_size``.
        ``frame.attrs["row_offset"]`` is the index of the chunk's first row in the input.
        """
        if self.hdf5:
            yield from self._hdf5_chunks(chunk_size, shard)
            return
        if shard is not None and str(self.path) == STDIO:
            raise UsageError("--shard needs a file, not stdin (each shard must count the rows)")
        lo, hi = shard_range(count_bedpe_rows(self.path), shard) if shard else (0, None)
        seen = 0
        for df in iter_bedpe_chunks(self.path, cell=self.cell, chunk_size=chunk_size):
            n = len(df)
            a, b = max(lo - seen, 0), n if hi is None else min(hi - seen, n)
            seen += n
            if b <= a:
                if hi is not None and seen >= hi:
                    break
                continue
            part = df.iloc[a:b].reset_index(drop=True) if (a, b) != (0, n) else df
            part.attrs["layout"] = df.attrs["layout"]
            part.attrs["row_offset"] = seen - n + a
            yield part, self._pairdata(part)

    def _pairdata(self, df: pd.DataFrame) -> PairData:
        if self._genome is None:
            return _no_sequence(df, None)
        data, n_padded = pairdata_from_frame(
            df,
            self._genome,
            enhancer_window=self.windows["enhancer"],
            promoter_window=self.windows["promoter"],
            where=self.where,
        )
        self.n_padded = getattr(self, "n_padded", 0) + n_padded
        return data

    def _hdf5_chunks(
        self, chunk_size: int, shard: tuple[int, int] | None
    ) -> Iterator[tuple[pd.DataFrame, PairData]]:
        with Dataset(self.path) as ds:
            info = ds.info
            if self.needs_sequence:
                want = (self.windows["enhancer"], self.windows["promoter"])
                if (info.enhancer_window, info.promoter_window) != want:
                    raise EpcliError(
                        f"dataset windows are enhancer={info.enhancer_window} "
                        f"promoter={info.promoter_window} bp but the model expects "
                        f"enhancer={want[0]} promoter={want[1]} bp",
                        path=self.path,
                        hint="prepare the pairs again with the model's window sizes",
                    )
            frame = ds.pairs_frame()
            data = ds.load()
        if self.cell is not None:
            frame[schema.COL_CELL] = self.cell
            data.cells = [self.cell]
            data.cell_idx = np.zeros(data.n_pairs, np.int64)
        lo, hi = shard_range(len(frame), shard)
        for a in range(lo, hi, chunk_size):
            rows = np.arange(a, min(a + chunk_size, hi))
            part = frame.iloc[rows].reset_index(drop=True)
            part.attrs["row_offset"] = a
            yield part, data.subset(rows)

    def read_all(self) -> tuple[pd.DataFrame, PairData]:
        """All pairs at once (adapt's support sets are small)."""
        frames, datas = [], []
        for f, d in self.chunks(chunk_size=10**9):
            frames.append(f)
            datas.append(d)
        if len(frames) != 1:  # pragma: no cover - one chunk by construction
            raise AssertionError("expected one chunk")
        return frames[0], datas[0]
