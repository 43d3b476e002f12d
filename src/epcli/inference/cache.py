"""A memory-bounded LRU cache of per-window encodings that spans chunks of pairs.

Scoring encodes each unique anchor window of a chunk once; across chunks the same windows come
back (a promoter is paired with every enhancer within a megabase, and those pairs fill many
chunks). :class:`WindowCache` keeps the encodings of recently used windows, so a window reused
across chunks is encoded once while memory stays bounded by a byte budget.

The cache is model-agnostic: a key is any hashable (:func:`window_keys` makes one from the
window's bases, so identical sequences share an entry whatever their coordinates), a value is
whatever per-window array the model computes (encoder tokens, a motif scan), a torch tensor or
a numpy array. :meth:`WindowCache.encode` is the one call a model's scoring code needs: give
the windows and a function that encodes a batch of them, get back the encodings of all of
them, computing only those not cached.

Keys include a ``tag`` (``"enhancer"`` / ``"promoter"``, or any name a model uses for one kind
of per-window output), so one cache can hold several encoders' outputs. A cache belongs to one
model: encodings of another model must not share it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Default memory budget of the cross-chunk cache (bytes).
DEFAULT_CACHE_BYTES = 512 * 1024**2


def window_keys(seqs: np.ndarray, tag: str = "") -> list[tuple[str, bytes]]:
    """Keys of windows from their bases: ``(tag, 16-byte BLAKE2b digest of the codes)``.

    Parameters
    ----------
    seqs : np.ndarray, shape (n, L), uint8
        Windows as base codes.
    tag : str
        Which encoding the key is for (e.g. ``"enhancer"``).

    Returns
    -------
    list of (str, bytes), length n
    """
    seqs = np.ascontiguousarray(seqs)
    return [(tag, hashlib.blake2b(row.tobytes(), digest_size=16).digest()) for row in seqs]


def nbytes_of(value: Any) -> int:
    """Bytes held by a cached value (torch tensor, numpy array, or a tuple/list of them)."""
    if isinstance(value, tuple | list):
        return sum(nbytes_of(v) for v in value)
    if hasattr(value, "element_size") and hasattr(value, "numel"):
        return int(value.element_size() * value.numel())
    if hasattr(value, "nbytes"):
        return int(value.nbytes)
    raise TypeError(f"cannot size a cached value of type {type(value).__name__}")


@dataclass
class CacheStats:
    """Counters of a :class:`WindowCache`.

    Attributes
    ----------
    hits, misses : int
        Windows found / not found by :meth:`WindowCache.get` and :meth:`WindowCache.encode`.
    evictions : int
        Entries dropped to stay within the budget.
    computed : int
        Windows encoded by :meth:`WindowCache.encode` (= its misses).
    """

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    computed: int = 0

    @property
    def hit_rate(self) -> float:
        """Hits / lookups (0 when none)."""
        n = self.hits + self.misses
        return self.hits / n if n else 0.0


class WindowCache:
    """Least-recently-used cache ``key -> per-window encoding``, bounded by bytes.

    Parameters
    ----------
    max_bytes : int
        Memory budget of the stored values. 0 disables storing (every lookup misses). A value
        larger than the whole budget is returned but not stored.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.stats = CacheStats()
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def get(self, key: Hashable) -> Any | None:
        """The value of ``key`` (marked most recently used), or None."""
        item = self._data.get(key)
        if item is None:
            self.stats.misses += 1
            return None
        self._data.move_to_end(key)
        self.stats.hits += 1
        return item[0]

    def put(self, key: Hashable, value: Any) -> None:
        """Store ``value`` under ``key``, evicting least recently used entries to fit."""
        size = nbytes_of(value)
        old = self._data.pop(key, None)
        if old is not None:
            self.nbytes -= old[1]
        if size > self.max_bytes:
            return
        while self._data and self.nbytes + size > self.max_bytes:
            _, (_, dropped) = self._data.popitem(last=False)
            self.nbytes -= dropped
            self.stats.evictions += 1
        self._data[key] = (value, size)
        self.nbytes += size

    def clear(self) -> None:
        """Drop every entry (the counters are kept)."""
        self._data.clear()
        self.nbytes = 0

    def encode(
        self,
        keys: Sequence[Hashable],
        compute: Callable[[np.ndarray], Any],
        stack: Callable[[list[Any]], Any] | None = None,
    ) -> Any:
        """Encodings of ``len(keys)`` windows, computing only the uncached ones.

        Parameters
        ----------
        keys : sequence of hashable, length n
            One key per window (distinct keys; see :func:`window_keys`).
        compute : callable
            ``compute(rows)`` gets the positions (int64 array, shape (m,)) of the windows to
            encode and returns their encodings stacked along the first axis, shape (m, ...).
        stack : callable, optional
            Joins a list of per-window encodings into one array; default ``torch.stack`` for
            tensors, ``numpy.stack`` otherwise.

        Returns
        -------
        array or tensor, shape (n, ...)
            The encodings in the order of ``keys``.
        """
        if len(keys) == 0:
            return compute(np.zeros(0, dtype=np.int64))
        values: list[Any] = [self.get(k) for k in keys]
        missing = np.array([i for i, v in enumerate(values) if v is None], dtype=np.int64)
        if missing.size:
            new = compute(missing)
            self.stats.computed += int(missing.size)
            for j, i in enumerate(missing.tolist()):
                # a copy: a row view would keep the whole batch's storage alive
                v = new[j].clone() if hasattr(new[j], "clone") else np.array(new[j])
                values[i] = v
                self.put(keys[i], v)
        if stack is None:
            if values and hasattr(values[0], "clone"):
                import torch

                stack = torch.stack
            else:
                stack = np.stack
        return stack(values)


__all__ = ["DEFAULT_CACHE_BYTES", "CacheStats", "WindowCache", "nbytes_of", "window_keys"]
