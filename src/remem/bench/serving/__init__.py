"""Reliability benches of the REST server, each against real ``remem serve`` processes.

- ``crash``: ``kill -9`` during ingest, restart; no acknowledged write lost or torn.
- ``writers``: several servers and CLI writers on one SQLite file; nothing lost or doubled.
- ``hostile``: malformed, hostile and cross-tenant requests (``probes``), then a
  schemathesis run (``fuzz``); never a 5xx, never another tenant's data.
- ``load``: a bounded loopback load test; requests per second and latency.
"""

from remem.bench.serving.crash import CrashReport, run_crash
from remem.bench.serving.fuzz import FuzzReport, run_fuzz
from remem.bench.serving.hostile import HostileReport, run_hostile
from remem.bench.serving.load import LoadReport, run_load
from remem.bench.serving.writers import WritersReport, run_writers

__all__ = [
    "CrashReport",
    "FuzzReport",
    "HostileReport",
    "LoadReport",
    "WritersReport",
    "run_crash",
    "run_fuzz",
    "run_hostile",
    "run_load",
    "run_writers",
]
