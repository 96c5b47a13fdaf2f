"""``remem bench serve-*``: reliability benches of the REST server (crash, writers,
hostile, load), each on fresh temporary files, each exiting 1 if its zero figure is not 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import click

from remem.bench.serving import run_crash, run_hostile, run_load, run_writers
from remem.cli.common import F, State, check_writable, pass_state, to_json, write_report


class Report(Protocol):
    """What every serving bench returns."""

    @property
    def ok(self) -> bool:
        """Whether every zero figure is zero."""

    def table(self) -> str:
        """The figures as text."""


def _report_options(func: F) -> F:
    func = click.option("--no-progress", is_flag=True, help="Hide the progress bar.")(func)
    func = click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
                        help="Also write the report as JSON to this file.")(func)  # fmt: skip
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the report as JSON instead of a table.")(func)  # fmt: skip


def _finish(state: State, report: Report, as_json: bool, out: Path | None, zero: str) -> None:
    """Print the report (table or JSON), write ``--out``, exit 1 unless ``report.ok``."""
    payload: dict[str, Any] = {"ok": report.ok, "report": report}
    write_report(out, payload)
    click.echo(to_json(payload) if as_json or state.as_json else report.table())
    if not report.ok:
        click.echo(f"error: {zero}; see the figures above", err=True)
        click.get_current_context().exit(1)


@click.command(name="serve-crash")
@click.option("--trials", type=click.IntRange(1, 10_000), default=50, show_default=True,
              help="Times the server is killed during ingest.")  # fmt: skip
@click.option("--clients", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Client threads posting adds.")  # fmt: skip
@click.option("--max-delay", type=click.FloatRange(0.1, 60), default=1.5, show_default=True,
              help="Kill at a random moment 0.05 s to this many seconds into ingest.")  # fmt: skip
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the kill times.")
@_report_options
@pass_state
def serve_crash(
    state: State, trials: int, clients: int, max_delay: float, seed: int, as_json: bool,
    out: Path | None, no_progress: bool,
) -> None:  # fmt: skip
    """kill -9 `remem serve` during ingest, restart it, count what was lost.

    Each trial posts adds with client message ids (acknowledged = answered 201),
    kills the server with SIGKILL, restarts it, checks the tenant's export
    (acknowledged messages lost, torn records, duplicates) and re-sends the adds
    that got no answer. The file is checked at the end with remem.Memory and
    PRAGMA integrity_check. Exits 1 if anything was lost, torn or duplicated.

    \b
    Examples:
      remem bench serve-crash                    # 50 trials, a few minutes
      remem bench serve-crash --trials 5 --json  # CI size
    """
    if out is not None:
        check_writable(out)
    report = run_crash(trials, clients, max_delay, seed, progress=not no_progress)
    _finish(state, report, as_json, out, "acknowledged writes were lost or records torn")


@click.command(name="serve-writers")
@click.option("--servers", type=click.IntRange(1, 16), default=3, show_default=True,
              help="`remem serve` processes on the one file.")  # fmt: skip
@click.option("--cli-writers", type=click.IntRange(0, 16), default=2, show_default=True,
              help="Processes running `remem add --file` one after another.")  # fmt: skip
@click.option("--clients", type=click.IntRange(1, 64), default=2, show_default=True,
              help="HTTP client threads per server.")  # fmt: skip
@click.option("--adds", type=click.IntRange(1, 100_000), default=40, show_default=True,
              help="Adds per HTTP client (it goes on while CLI writers still run).")  # fmt: skip
@click.option("--cli-adds", type=click.IntRange(1, 10_000), default=8, show_default=True,
              help="`remem add` runs per CLI writer.")  # fmt: skip
@click.option("--cli-batch", type=click.IntRange(1, 256), default=3, show_default=True,
              help="Messages per `remem add --file` run.")  # fmt: skip
@_report_options
@pass_state
def serve_writers(
    state: State, servers: int, cli_writers: int, clients: int, adds: int, cli_adds: int,
    cli_batch: int, as_json: bool, out: Path | None, no_progress: bool,
) -> None:  # fmt: skip
    """Several servers and CLI writers on one SQLite file at once.

    HTTP clients post adds round-robin over the servers (every fourth re-sends an
    acknowledged add to another server: it must come back as duplicates) while
    CLI processes run `remem add --file`. Then it counts lost, duplicated and torn
    records, PRAGMA integrity_check and failed requests (non-2xx, lost
    connections, CLI exit codes). Exits 1 unless all are 0 and the file is ok.

    \b
    Examples:
      remem bench serve-writers                        # 3 servers, 2 CLI writers
      remem bench serve-writers --servers 2 --cli-writers 1 --adds 10
    """
    if out is not None:
        check_writable(out)
    report = run_writers(servers, cli_writers, clients, adds, cli_adds, cli_batch,
                         progress=not no_progress)  # fmt: skip
    _finish(state, report, as_json, out, "writes were lost, doubled or failed")


@click.command(name="serve-hostile")
@click.option("--fuzz-examples", type=click.IntRange(0, 100_000), default=100,
              show_default=True, help="schemathesis examples per operation (0: no "
              "schemathesis run; it needs `pip install schemathesis`).")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fuzzing.")
@_report_options
@pass_state
def serve_hostile(
    state: State, fuzz_examples: int, seed: int, as_json: bool, out: Path | None,
    no_progress: bool,
) -> None:  # fmt: skip
    """Malformed, hostile and cross-tenant requests; then schemathesis.

    About 275 requests against a server with tenants A to D: wrong types,
    missing and unknown fields, bodies over 1 MiB (also chunked), invalid UTF-8,
    deep nesting, NUL bytes, injection strings, bad keys, and tenant B's ids
    used with A's key (each must be answered exactly like an unknown id). All
    must get a 4xx (or, where valid, stay in the caller's tenant), nothing may
    mention B's data, and A's and B's exports must not change. Then
    schemathesis fuzzes /openapi.json (no 5xx, answers match the schema).

    \b
    Examples:
      remem bench serve-hostile
      remem bench serve-hostile --fuzz-examples 0 --json
    """
    if out is not None:
        check_writable(out)
    report = run_hostile(fuzz_examples, seed, progress=not no_progress)
    _finish(state, report, as_json, out, "the server answered a hostile request wrongly")


@click.command(name="serve-load")
@click.option("--duration", type=click.FloatRange(0.5, 3600), default=10.0, show_default=True,
              help="Seconds of load; the run stops by itself.")  # fmt: skip
@click.option("--clients", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Client threads, one keep-alive connection each.")  # fmt: skip
@click.option("--search-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of requests that are searches (the rest are adds).")  # fmt: skip
@_report_options
@pass_state
def serve_load(
    state: State, duration: float, clients: int, search_share: float, as_json: bool,
    out: Path | None, no_progress: bool,
) -> None:  # fmt: skip
    """A bounded loopback load test of `remem serve` (default embedder).

    Clients mix one-message adds and searches for --duration seconds; prints
    requests per second and p50/p99 latency for each, and errors. Exits 1 if any
    request failed or an acknowledged add is missing afterwards.

    \b
    Examples:
      remem bench serve-load                          # 10 s, 4 clients
      remem bench serve-load --duration 30 --clients 8 --out load.json
    """
    if out is not None:
        check_writable(out)
    report = run_load(duration, clients, search_share, progress=not no_progress)
    _finish(state, report, as_json, out, "requests failed under load")
