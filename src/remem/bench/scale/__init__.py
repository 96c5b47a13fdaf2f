"""Scale benchmark: many users' synthetic memories on SQLite and PostgreSQL side by side:
ingest rate, search within one user's scope and across the tenant, ANN recall against
exact search, size on disk and peak memory (``remem bench scale``, docs/scale.md)."""

from remem.bench.scale.run import BACKENDS, run_scale

__all__ = ["BACKENDS", "run_scale"]
