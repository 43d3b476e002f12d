"""Score pairs chunk by chunk and write scored BEDPE (the library side of ``epcli predict``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

import numpy as np

from epcli.core import schema
from epcli.core.metrics import near_constant
from epcli.inference.predictor import Predictor
from epcli.io.bedpe import write_bedpe_rows
from epcli.io.prototype_file import Prototype
from epcli.io.source import PairsInput


@dataclass
class ScoreStats:
    """Running summary of the scores written (for the collapse check and the log)."""

    n: int = 0
    n_called: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    lo: float = float("inf")
    hi: float = float("-inf")
    cells: set[str] = field(default_factory=set)
    #: Columns of a previous scoring in the input, replaced (not duplicated) in the output.
    replaced: list[str] = field(default_factory=list)

    def add(self, prob: np.ndarray) -> None:
        """Fold in a chunk's probabilities (n,)."""
        if prob.size == 0:
            return
        self.n += int(prob.size)
        self.total += float(prob.sum())
        self.total_sq += float(np.square(prob).sum())
        self.lo = min(self.lo, float(prob.min()))
        self.hi = max(self.hi, float(prob.max()))

    @property
    def std(self) -> float:
        """Standard deviation of all scores."""
        if self.n == 0:
            return 0.0
        mean = self.total / self.n
        return float(np.sqrt(max(self.total_sq / self.n - mean * mean, 0.0)))

    def collapsed(self) -> bool:
        """True when the scores are near-constant (:func:`~epcli.core.metrics.near_constant`)."""
        return near_constant(self.n, self.std)


def score_to_bedpe(
    predictor: Predictor,
    source: PairsInput,
    out: IO[str],
    *,
    prototype: Prototype | None = None,
    chunk_size: int = 100_000,
    batch_size: int = 256,
    shard: tuple[int, int] | None = None,
    header: bool = True,
    progress: Callable[[int], None] | None = None,
) -> ScoreStats:
    """Score every input pair and write them, in input order, as BEDPE.

    Columns: the ten standard BEDPE columns (``score`` = probability of interaction), the
    input's extra columns, then ``logit``, ``u_i``, ``r_e`` and, when the prototype carries
    a best-F1 threshold, ``call`` (1 if score >= threshold).

    Parameters
    ----------
    predictor : Predictor
    source : PairsInput
    out : text stream
    prototype : Prototype, optional
        The cell's prototype (``epcli adapt``); None is the zero-shot path.
    chunk_size : int
        Pairs per chunk (bounds memory); each chunk's unique anchors are encoded once.
    batch_size : int
        Anchors / pairs per device batch.
    shard : (I, N), optional
        Score only the I-th of N contiguous parts of the input.
    header : bool
        Write the ``#`` header line (only the first shard writes it, so that shards
        concatenate to the single-job output).
    progress : callable, optional
        Called with the number of pairs done.
    """
    stats = ScoreStats()
    threshold = None if prototype is None else prototype.threshold_best_f1
    columns: list[str] | None = None
    for frame, data in source.chunks(chunk_size=chunk_size, shard=shard):
        if columns is None:
            # a scored file scored again: its logit/u_i/r_e/call are replaced, not repeated
            ours = (*schema.PREDICT_EXTRA, schema.COL_CALL)
            kept = source.layout(frame).output_columns
            stats.replaced = [c for c in kept if c in ours]
            columns = [c for c in kept if c not in ours] + list(schema.PREDICT_EXTRA)
            if threshold is not None:
                columns.append(schema.COL_CALL)
        done = stats.n
        s = predictor.score(
            data,
            prototype,
            batch_size=batch_size,
            progress=None if progress is None else (lambda k, _n, d=done: progress(d + k)),
            row_offset=int(frame.attrs.get("row_offset", 0)),
        )
        frame = frame.copy()
        frame["score"] = s["prob"]
        for name in schema.PREDICT_EXTRA:
            frame[name] = s[name]
        if threshold is not None:
            frame[schema.COL_CALL] = (s["prob"] >= threshold).astype(np.int8)
            stats.n_called += int(frame[schema.COL_CALL].sum())
        write_bedpe_rows(out, frame, columns, header=header and stats.n == 0)
        stats.add(s["prob"])
        stats.cells.update(c for c in frame[schema.COL_CELL].unique() if c != schema.MISSING)
    return stats
