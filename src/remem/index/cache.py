"""Live scope indexes over a store: one consistent view per read, refreshed incrementally.

``LiveIndex.open(flt)`` opens one snapshot of the store (a read transaction), brings the
scope's ``LiveScope`` up to that snapshot's revision by taking in only what changed since
its own revision, and holds the scope's lock while the caller reads: every read of one
search sees exactly one state of the store, and a write costs the next search only the
rows it wrote.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from remem.errors import StoreError
from remem.index.live import LiveScope
from remem.stores.base import MemoryFilter, ScopeKey, Store

log = logging.getLogger(__name__)
MAX_SCOPES = 64  # scope indexes kept per process (least recently used are dropped)
MEMORY_BUDGET = 1 << 30  # bytes the scope indexes may take (``LiveScope.nbytes``)
SLOW_REFRESH_S = 1.0
COMPACT_AFTER = 1000  # dead rows an index may hold before it is rebuilt (and as many as live)


class SnapshotMoved(StoreError):
    """A fast read (``LiveIndex.open(..., fast=True)``) made store reads while a write
    came in: they may have seen a later state than the index. Read again in a snapshot."""


class _Entry:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.scope = LiveScope()
        self.nbytes = 0  # the scope's ``nbytes()`` as of its last refresh


class LiveIndex:
    """The live scope indexes of one store, shared by every thread using it."""

    def __init__(
        self, store: Store, max_scopes: int = MAX_SCOPES, budget: int = MEMORY_BUDGET
    ) -> None:
        self.store = store
        self.max_scopes = max_scopes
        self.budget = budget
        self._entries: OrderedDict[ScopeKey, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def _entry(self, key: ScopeKey) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_scopes:
                self._entries.popitem(last=False)
            return entry

    @contextmanager
    def open(self, flt: MemoryFilter, fast: bool = False) -> Iterator[LiveScope]:
        """The filter's scope index, current as of one snapshot that stays open (and the
        scope locked) until the block ends; store reads inside see the same snapshot.

        ``fast``: when one read of the store's revision finds the index current, no
        snapshot is held: the block reads the index alone, and if it also read the store
        while a write came in (a second revision read tells), leaving it raises
        ``SnapshotMoved`` (read again without ``fast``). Two reads of one revision around
        them mean every store read saw that revision. A snapshot's BEGIN, read and COMMIT
        after a query embedding took about 0.2 ms of a 1.7 ms search pipeline (README)."""
        entry = self._entry(flt.scope_key)
        with entry.lock:
            if fast and self.store.latest_revision() == entry.scope.revision:
                reads = self.store.reads()
                yield entry.scope
                if self.store.reads() != reads:
                    self._check_unmoved(entry.scope.revision)
                return
            for _ in range(10):
                with self.store.snapshot() as revision:
                    if revision < entry.scope.revision:
                        continue  # this view is older than the index: take a newer one
                    if revision > entry.scope.revision:
                        self._refresh(entry, flt.scope_key)
                        self._trim(flt.scope_key)
                    yield entry.scope
                    return
            raise StoreError("the store kept changing under a read; try again")

    def _check_unmoved(self, revision: int) -> None:
        latest = self.store.latest_revision()
        if latest != revision:
            raise SnapshotMoved(f"the store moved from revision {revision} to {latest} during "
                                "a read; read again")  # fmt: skip

    def _refresh(self, entry: _Entry, key: ScopeKey) -> None:
        """Take in what changed; an index that has come to hold more dead rows (old states
        of changed or deleted memories) than live ones, and at least ``COMPACT_AFTER``, is
        rebuilt from the store instead: amortised, a change still costs O(1)."""
        started = time.perf_counter()
        if entry.scope.dead_rows() >= max(COMPACT_AFTER, len(entry.scope.row_of)):
            entry.scope = LiveScope()
        changes = self.store.changes(key, entry.scope.revision)
        try:
            entry.scope.apply(changes)
        except BaseException:
            entry.scope = LiveScope()  # never keep a half-applied index: rebuild next time
            raise
        entry.nbytes = entry.scope.nbytes()
        took = time.perf_counter() - started
        if took > SLOW_REFRESH_S:
            log.info("scope index %s took in %d rows in %.2f s", key, len(changes.rows), took)

    def _trim(self, keep: ScopeKey) -> None:
        """Drop the least recently used scope indexes (never ``keep``) while all of them
        together take more than the budget; a dropped one is rebuilt when searched."""
        with self._lock:
            total = sum(entry.nbytes for entry in self._entries.values())
            for key in list(self._entries):
                if total <= self.budget:
                    break
                if key != keep:
                    total -= self._entries.pop(key).nbytes
            if total > self.budget:
                log.info("the index of scope %s alone takes about %d MB, over the %d MB "
                         "budget", keep, total >> 20, self.budget >> 20)  # fmt: skip

    def clear(self) -> None:
        """Drop every scope index (they are rebuilt from the store on the next read)."""
        with self._lock:
            self._entries.clear()
