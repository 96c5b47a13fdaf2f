"""``remem bench``: retrieval benchmarks (LoCoMo, LongMemEval) and vector index options."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from remem.bench import vectors as vector_bench
from remem.bench.datasets import load_dataset
from remem.bench.metrics import format_table
from remem.bench.runner import run
from remem.cli.main import (
    RECIPE_HELP,
    F,
    State,
    _check_writable,
    check_recipes,
    main,
    pass_state,
    to_json,
)
from remem.errors import DataFormatError
from remem.registry import create_embedder
from remem.retrieval.recipes import ablations
from remem.settings import load_settings

_BENCH_TITLES = {"locomo": "LoCoMo", "longmemeval": "LongMemEval"}
LONGMEMEVAL_COLUMNS = (
    "session_recall_any@5", "session_recall_all@5", "session_recall_any@10", "session_ndcg@10",
    "turn_recall_any@5", "turn_recall_all@10", "n",
)  # fmt: skip
LOCOMO_COLUMNS = (
    "turn_recall_all@5", "turn_recall_any@5", "turn_recall_all@10", "turn_recall_any@10",
    "turn_recall_all@20", "session_recall_any@5", "ndcg@10", "n",
)  # fmt: skip
KEY_METRICS = {
    "locomo": ("turn_recall_all@10", "turn_recall_any@5", "session_recall_any@5"),
    "longmemeval": ("session_recall_any@5", "session_recall_all@5", "turn_recall_any@5"),
}
# ----------------------------------------------------------------------------- bench


@main.group()
def bench() -> None:
    """Measure retrieval quality and speed on LoCoMo or LongMemEval files.

    Each run ingests the file into a fresh temporary database (your --db is not
    touched) and asks every question with each --recipe.

    \b
    Example:
      remem bench locomo locomo10.json --recipe default --recipe bm25 --out report.json
    """


def _bench_options(func: F) -> F:
    func = click.option("--no-progress", is_flag=True, help="Hide the progress bars.")(func)
    func = click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write the report as JSON (a list when several recipes are given).",
    )(func)
    func = click.option(
        "--ablate",
        is_flag=True,
        help="Also run the default recipe with each of its mechanisms switched off, and "
        "print what each one adds per category.",
    )(func)
    func = click.option(
        "--recipe",
        "recipes",
        multiple=True,
        callback=check_recipes,
        default=("default",),
        show_default=True,
        help=f"Recipe to evaluate (repeatable; one ingest serves them all): {RECIPE_HELP}.",
    )(func)
    return click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))(
        func
    )


@bench.command()
@_bench_options
@pass_state
def locomo(
    state: State,
    data: Path,
    recipes: tuple[str, ...],
    ablate: bool,
    out: Path | None,
    no_progress: bool,
) -> None:
    """Benchmark retrieval on a LoCoMo file (locomo10.json layout).

    Prints, per recipe, turn and session recall and nDCG per category, plus
    ingest and search speed.

    \b
    Example:
      remem bench locomo locomo10.json --recipe default --recipe rrf --out locomo.json
    """
    _run_bench(state, "locomo", data, _with_ablations(recipes, ablate), out, not no_progress)


@bench.command()
@_bench_options
@pass_state
def longmemeval(
    state: State,
    data: Path,
    recipes: tuple[str, ...],
    ablate: bool,
    out: Path | None,
    no_progress: bool,
) -> None:
    """Benchmark retrieval on a LongMemEval file (longmemeval_s.json layout).

    Prints, per recipe, session recall and nDCG per question type (and turn
    recall where turns are marked has_answer), plus ingest and search speed.

    \b
    Example:
      remem bench longmemeval longmemeval_s.json --out lme.json
    """
    _run_bench(state, "longmemeval", data, _with_ablations(recipes, ablate), out, not no_progress)


def _run_bench(
    state: State,
    benchmark: str,
    data: Path,
    recipes: Sequence[str],
    out: Path | None,
    progress: bool,
) -> None:
    """Check the file's layout, run every recipe, print tables or JSON, write ``--out``."""
    if out is not None:
        _check_writable(out)
    dataset = load_dataset(data)
    found = dataset.name
    if found != benchmark:
        raise DataFormatError(
            f"{data} is a {_BENCH_TITLES[found]} file, not {_BENCH_TITLES[benchmark]}; "
            f"run `remem bench {found} {data}`"
        )
    columns = LOCOMO_COLUMNS if benchmark == "locomo" else LONGMEMEVAL_COLUMNS
    show = None if state.as_json else (lambda r: click.echo(_format_report(r, columns)))
    embedder = create_embedder(load_settings(state.db).embedder)
    reports = run(dataset, list(dict.fromkeys(recipes)), embedder, progress, show)
    if len(reports) > 1 and not state.as_json:
        overall = {r["recipe"]: r["retrieval"]["overall"] for r in reports}
        click.echo(format_table(overall, _present(columns, overall), "recipe"))
        for metric in KEY_METRICS[benchmark]:
            click.echo(f"\n{metric} per category:")
            click.echo(format_table(*_by_category(reports, metric)))
    payload: Any = reports[0] if len(reports) == 1 else reports
    if out is not None:
        try:
            out.write_text(to_json(payload) + "\n", encoding="utf-8")
        except OSError as exc:
            raise click.FileError(str(out), exc.strerror) from None
        click.echo(f"wrote {out}", err=True)
    if state.as_json:
        click.echo(to_json(payload))


def _with_ablations(recipes: Sequence[str], ablate: bool) -> list[str]:
    return list(dict.fromkeys([*recipes, *(ablations("default") if ablate else [])]))


def _by_category(
    reports: Sequence[Mapping[str, Any]], metric: str
) -> tuple[dict[str, dict[str, float]], list[str], str]:
    """Rows: recipes; columns: categories then overall; cells: one metric."""
    rows: dict[str, dict[str, float]] = {}
    for report in reports:
        retrieval = report["retrieval"]
        row = {c: m[metric] for c, m in retrieval["by_category"].items() if metric in m}
        row["overall"] = retrieval["overall"].get(metric, float("nan"))
        rows[report["recipe"]] = row
    columns = list(dict.fromkeys(c for row in rows.values() for c in row))
    return rows, columns, "recipe"


def _present(columns: Sequence[str], rows: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The columns that at least one row has a value for."""
    return [c for c in columns if any(c in row for row in rows.values())]


def _format_report(report: Mapping[str, Any], columns: Sequence[str]) -> str:
    """One recipe's report: a header, a table per category plus overall, and timings."""
    retrieval = report["retrieval"]
    rows = {**retrieval["by_category"], "overall": retrieval["overall"]}
    ingest, search_ = report["ingest"], report["search"]
    return "\n".join([
        f"{_BENCH_TITLES.get(report['benchmark'], report['benchmark'])}  "
        f"recipe={report['recipe']}  embedder={report['embedder']}",
        f"{report['n_conversations']} conversations, {report['n_questions']} questions scored, "
        f"{report['skipped_questions']} skipped",
        "",
        format_table(rows, _present(columns, rows), "category"),
        "",
        f"ingest: {ingest['turns']} turns in {ingest['seconds']:.2f} s "
        f"({ingest['turns_per_second']:.1f} turns/s)",
        f"search: {search_['queries']} queries, p50 {search_['p50_ms']:.1f} ms, "
        f"p95 {search_['p95_ms']:.1f} ms",
        *_context_lines(report.get("context", {})),
        "",
    ])  # fmt: skip


@bench.command("vectors")
@click.option("--rows", type=click.IntRange(10, 1_000_000), default=5000, show_default=True)
@click.option("--queries", type=click.IntRange(1, 10_000), default=200, show_default=True)
@click.option("--k", type=click.IntRange(1, 100), default=10, show_default=True)
@pass_state
def vectors_(state: State, rows: int, queries: int, k: int) -> None:
    """Compare vector index options: time per query and recall@k against exact search.

    Uses random unit vectors of 384 dimensions (MiniLM's size); an option whose
    library is missing is reported as unavailable.

    \b
    Example:
      remem bench vectors --rows 50000 --queries 100
    """
    report = vector_bench.run(rows=rows, queries=queries, k=k)
    if state.as_json:
        click.echo(to_json(report))
        return
    table = {
        name: {key: value for key, value in info.items() if isinstance(value, float)}
        for name, info in report["options"].items()
        if info.get("available")
    }
    click.echo(f"{rows} vectors x {report['dim']} dims, {queries} queries, k={k}")
    click.echo(format_table(table, ["p50_ms", "p95_ms", "recall@k"], "option"))
    missing = [name for name, info in report["options"].items() if not info.get("available")]
    if missing:
        click.echo(f"unavailable here: {', '.join(missing)}")


def _context_lines(context: Mapping[str, float]) -> list[str]:
    """Context-budget recall, one line per budget."""
    budgets = sorted({int(k.split("@")[1][:-3]) for k in context})
    return [
        f"context @{b} tokens: recall_all {context[f'recall_all@{b}tok']:.3f}, "
        f"recall_any {context[f'recall_any@{b}tok']:.3f}, "
        f"mean {context[f'mean_tokens@{b}tok']:.0f} tokens"
        for b in budgets
    ]
