"""``remem bench scale``: many users' memories on SQLite and PostgreSQL side by side."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from remem.bench.scale import BACKENDS, run_scale
from remem.bench.scale.report import tables
from remem.cli.common import State, check_writable, pass_state, to_json, write_report


def _numbers(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    """``100000,1000000`` -> ``(100000, 1000000)``; each at least 1."""
    try:
        numbers = tuple(int(part) for part in value.replace("_", "").split(",") if part.strip())
    except ValueError:
        numbers = ()
    if not numbers or min(numbers) < 1:
        raise click.BadParameter(f"{value!r}: give positive whole numbers, e.g. 100000,1000000")
    return numbers


def _backends(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [b for b in chosen if b not in BACKENDS]
    if not chosen or unknown:
        raise click.BadParameter(f"{value!r}: choose from {', '.join(BACKENDS)}")
    return chosen


def _echo_run(run: Mapping[str, Any]) -> None:
    """One line as each measurement finishes (a 1M run takes hours)."""
    user, tenant = run["search"]["user"], run["search"]["tenant"]
    click.echo(
        f"{run['backend']} {run['size']:,}: ingest {run['ingest']['turns_per_second']:,} "
        f"turns/s, search user p95 {user['p95_ms']} ms, tenant p95 {tenant['p95_ms']} ms, "
        f"disk {run['disk']['bytes'] / (1 << 20):,.0f} MB",
        err=True,
    )


@click.command(name="scale")
@click.option("--sizes", default="100000", show_default=True, callback=_numbers,
              help="Memories (turns) per measurement, comma-separated.")  # fmt: skip
@click.option("--users", type=click.IntRange(1, 1_000_000),
              help="Users sharing them. Default: one per 10,000 memories.")  # fmt: skip
@click.option("--backends", default=",".join(BACKENDS), show_default=True,
              callback=_backends, help="Stores to measure, comma-separated.")  # fmt: skip
@click.option("--database", metavar="URL",
              help="PostgreSQL database to write into (a new namespace per measurement, "
              "left there; best empty: its growth is the size on disk). Default: a "
              "throwaway local server (the [postgres] extra), a fresh database each.")  # fmt: skip
@click.option("--queries", type=click.IntRange(2, 10_000), default=100, show_default=True,
              help="Distinct queries timed per scope and used for recall.")  # fmt: skip
@click.option("--pool", type=click.IntRange(100, 10_000_000), default=20_000,
              show_default=True, help="Distinct texts embedded with the real model; every "
              "memory's text is drawn from them.")  # fmt: skip
@click.option("--ef-search", "efs", default="40,100,200", show_default=True,
              callback=_numbers, help="HNSW ef_search values to measure.")  # fmt: skip
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report as JSON (the pool's vectors are cached beside it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
@pass_state
def scale(
    state: State, sizes: tuple[int, ...], users: int | None, backends: tuple[str, ...],
    database: str | None, queries: int, pool: int, efs: tuple[int, ...], out: Path | None,
    as_json: bool, no_progress: bool,
) -> None:  # fmt: skip
    """Ingest, search and ANN recall with many users, per store, side by side.

    Each measurement fills a fresh store with SIZE synthetic chat turns over many
    users (sessions of 20-40 turns, one add each), drawing texts from a pool
    embedded once with the default model (cached in a .npy file), then times
    Memory.search in one user's scope and across the tenant, measures the size
    on disk and peak memory, and compares HNSW (usearch beside SQLite, pgvector
    in PostgreSQL) with exact top-10 on the same query vectors, over the tenant
    and for one user (filter before vs after). Each runs in its own process.

    \b
    Examples:
      remem bench scale                                  # 100k, both stores, ~10 min
      remem bench scale --sizes 2000 --users 4 --pool 3000 --queries 20   # CI size
      remem bench scale --sizes 1000000 --backends postgres \\
          --database "$(remem postgres start --dir pg)" --out scale-1m.json
    """
    if out is not None:
        check_writable(out)
    report = run_scale(sizes, users, backends, database, queries, pool, efs,
                       progress=not no_progress, cache=out.parent if out else None,
                       on_run=None if as_json or state.as_json else _echo_run)  # fmt: skip
    write_report(out, report)
    click.echo(to_json(report) if as_json or state.as_json else tables(report))
