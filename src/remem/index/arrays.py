"""Array building blocks of the scope index: growable columns, a size-bounded LRU, and
ranking helpers over (rows, scores) pairs."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

T = TypeVar("T")
K = TypeVar("K")
Rows = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
NO_ROWS: Rows = np.zeros(0, dtype=np.int64)
NO_SCORES: Floats = np.zeros(0, dtype=np.float64)
# ``sum_by_row`` counts over the rows' range instead of sorting them when the range is at
# most this many times the entries (a pass over the range is cheaper than a sort)
DENSE_RANGE = 16


class Column:
    """A growable numpy column (capacity doubles); old views stay valid."""

    def __init__(self, dtype: Any, width: int = 0, capacity: int = 16) -> None:
        self.width = width
        shape = (capacity, width) if width else (capacity,)
        self.data: npt.NDArray[Any] = np.zeros(shape, dtype=dtype)
        self.size = 0

    def append(self, value: Any) -> None:
        if self.size == len(self.data):
            grown = np.zeros((2 * len(self.data), *self.data.shape[1:]), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size] = value
        self.size += 1

    def view(self) -> npt.NDArray[Any]:
        return self.data[: self.size]


class Kept(Generic[K, T]):
    """The most recently used values, dropped oldest first once their sizes (array
    cells) add up to more than the bound given with the newest."""

    def __init__(self) -> None:
        self._items: OrderedDict[K, tuple[T, int]] = OrderedDict()
        self._used = 0

    def get(self, key: K) -> T | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: K, value: T, size: int, bound: int) -> None:
        old = self._items.pop(key, None)
        self._used += size - (old[1] if old else 0)
        self._items[key] = (value, size)
        while self._used > bound and len(self._items) > 1:
            _, (_, dropped) = self._items.popitem(last=False)
            self._used -= dropped

    def clear(self) -> None:
        self._items.clear()
        self._used = 0


def sum_by_row(rows: list[Rows], scores: list[Floats]) -> tuple[Rows, Floats]:
    """Per-term (rows, scores) summed per row, rows ascending (each term's rows unique)."""
    if len(rows) == 1:
        return rows[0], scores[0]
    return add_by_row(np.concatenate(rows), np.concatenate(scores))


def add_by_row(rows: Rows, values: Floats) -> tuple[Rows, Floats]:
    """Each distinct row once (ascending) with the sum of its values. Where the rows are
    dense in their range (common terms over a scope) one counting pass over the range
    replaces a sort; both add each row's values in the order given, so the sums are
    identical."""
    if not rows.size:
        return NO_ROWS, NO_SCORES
    size = int(rows.max()) + 1
    if size <= DENSE_RANGE * rows.size:
        summed = np.bincount(rows, weights=values, minlength=size)
        unique = np.flatnonzero(np.bincount(rows, minlength=size)).astype(np.int64, copy=False)
        return unique, np.asarray(summed[unique], dtype=np.float64)
    unique, where = np.unique(rows, return_inverse=True)
    summed = np.bincount(where, weights=values, minlength=unique.size)
    return unique, summed.astype(np.float64)


def top(rows: Rows, scores: Floats, limit: int) -> tuple[Rows, Floats]:
    """The ``limit`` best rows, best first (ties: the earlier row first)."""
    rows, scores = best_of(rows, scores, limit)
    order = np.lexsort((rows, -scores))
    return rows[order], scores[order]


def best_of(rows: Rows, scores: Floats, limit: int) -> tuple[Rows, Floats]:
    """The rows ``top`` selects, in no particular order: for uses that do not depend on
    it (sums, maxima and scatters over the rows), the sort is saved."""
    if rows.size <= limit:
        return rows, scores
    keep = np.argpartition(-scores, limit - 1)[:limit] if limit > 0 else NO_ROWS
    return rows[keep], scores[keep]
