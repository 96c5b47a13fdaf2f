"""Recall records kept in memory and written in batches, so a search never writes.

``Memory.search`` hands the ids it returns to a ``RecallLog``; a background thread writes
what has gathered in one store transaction per namespace (``Store.record_access``) when
``FLUSH_HITS`` recalls are waiting or ``FLUSH_SECONDS`` after the first of them, and
``close`` writes the rest. A search therefore costs an append under a lock, never a
write transaction (nor a wait for another process's write lock).

Recall statistics are best-effort: if the process dies, the recalls still waiting are
lost (at most ``FLUSH_SECONDS`` of them); a failed background write is logged with the
number of recalls it dropped and counted in ``dropped``. An explicit ``flush`` (and
``close``) raises the store's error instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

log = logging.getLogger(__name__)
FLUSH_HITS = 256  # recalls that wake the writer
FLUSH_SECONDS = 2.0  # the longest a recall waits to be written
Write = Callable[[str, list[tuple[str, datetime]]], object]  # (namespace, [(id, at)])


class RecallLog:
    """Recalls waiting to be written, and the thread that writes them (see the module)."""

    def __init__(
        self, write: Write, max_pending: int = FLUSH_HITS, max_age_s: float = FLUSH_SECONDS
    ) -> None:
        self._write = write
        self.max_pending = max_pending
        self.max_age_s = max_age_s
        self._pending: list[tuple[str, str, datetime]] = []  # (namespace, memory id, at)
        self._lock = threading.Lock()  # guards _pending, _thread, _closed
        self._writing = threading.Lock()  # one batch written at a time, in order
        self._waiting = threading.Event()  # set when the first recall of a batch arrives
        self._full = threading.Event()  # set when a batch is full, or on close
        self._thread: threading.Thread | None = None
        self._closed = False
        self.dropped = 0  # recalls lost to failed background writes

    def record(self, namespace: str, memory_ids: Sequence[str], at: datetime) -> None:
        """Note that these memories were recalled at ``at`` (cheap: no I/O)."""
        if not memory_ids:
            return
        with self._lock:
            if self._closed:
                return
            first = not self._pending
            self._pending.extend((namespace, memory_id, at) for memory_id in memory_ids)
            full = len(self._pending) >= self.max_pending
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="remem-recalls",
                                                daemon=True)  # fmt: skip
                self._thread.start()
        if first:
            self._waiting.set()
        if full:
            self._full.set()

    def pending(self) -> int:
        """How many recalls are waiting to be written."""
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Write every waiting recall now, in this thread; returns how many were written.
        A store error propagates (that batch is not kept)."""
        with self._writing:
            batch = self._take()
            self._write_batch(batch)
            return len(batch)

    def close(self) -> None:
        """Stop the writer thread and write what is left (errors propagate)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._waiting.set()
        self._full.set()
        if thread is not None:
            thread.join()
        self.flush()

    def _take(self) -> list[tuple[str, str, datetime]]:
        with self._lock:
            batch, self._pending = self._pending, []
        return batch

    def _write_batch(self, batch: list[tuple[str, str, datetime]]) -> None:
        """One store write per namespace, recalls in the order they were recorded."""
        by_namespace: dict[str, list[tuple[str, datetime]]] = {}
        for namespace, memory_id, at in batch:
            by_namespace.setdefault(namespace, []).append((memory_id, at))
        for namespace, accesses in by_namespace.items():
            self._write(namespace, accesses)

    def _run(self) -> None:
        """The writer thread: sleep until a recall waits, give the batch ``max_age_s`` to
        fill (less if it fills), write it; ``close`` writes the last one itself."""
        while True:
            self._waiting.wait()
            self._waiting.clear()
            self._full.wait(self.max_age_s)
            self._full.clear()
            with self._lock:
                if self._closed:
                    return
            self._flush_in_background()

    def _flush_in_background(self) -> None:
        started = time.perf_counter()
        with self._writing:
            batch = self._take()
            try:
                self._write_batch(batch)
            except Exception:  # the thread is an edge: record the loss, keep running
                self.dropped += len(batch)
                log.warning("could not record %d recalls; their access statistics are lost",
                            len(batch), exc_info=True)  # fmt: skip
                return
        log.debug("recorded %d recalls in %.1f ms", len(batch),
                  (time.perf_counter() - started) * 1000)  # fmt: skip
