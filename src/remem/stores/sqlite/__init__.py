"""The embedded default store: one SQLite file (WAL, FTS5, numpy vectors)."""

from remem.stores.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
