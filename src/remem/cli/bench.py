"""``remem bench``: retrieval benchmarks (LoCoMo, LongMemEval), search latency against the
query embedding, live search and concurrency speed, and vector index options."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from remem.bench import vectors as vector_bench
from remem.bench.concurrency import run_concurrency
from remem.bench.datasets import load_dataset
from remem.bench.latency import (
    DEFAULT_RECIPES,
    ROUNDS,
    STEPS_RECIPE,
    TIMINGS_KEY,
    USER_SIZE,
    WARMUP,
    run_latency,
)
from remem.bench.live import run_live
from remem.bench.metrics import format_table
from remem.bench.runner import MEMORIES, run
from remem.cli.bench_qa import qa_options, run_qa_command, wants_qa
from remem.cli.bench_scale import scale
from remem.cli.bench_serving import serve_crash, serve_hostile, serve_load, serve_writers
from remem.cli.common import (
    RECIPE_HELP,
    F,
    State,
    check_recipes,
    check_writable,
    pass_state,
    to_json,
    write_report,
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


@click.group()
def bench() -> None:
    """Measure retrieval quality and speed on LoCoMo or LongMemEval files, search
    latency per recipe against the query embedding (latency), search speed while a
    conversation grows (live), several processes on one file (concurrency), and the REST
    server under kill -9 (serve-crash), shared writers (serve-writers), hostile requests
    (serve-hostile) and load (serve-load).

    Each run works in a fresh temporary database (your --db is not touched).

    \b
    Example:
      remem bench locomo locomo10.json --recipe default --recipe bm25 --out report.json
    """


def _bench_options(func: F) -> F:
    func = click.option("--no-progress", is_flag=True, help="Hide the progress bars.")(func)
    func = click.option(
        "--database",
        metavar="URL",
        help="Ingest into this database (e.g. postgresql://...), in a new namespace "
        "bench-<random> that is left there, instead of a fresh temporary SQLite file.",
    )(func)
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
@click.option(
    "--facts-from-observations",
    "facts",
    is_flag=True,
    help="Also load the file's own observation facts (each cites its dia_id) as fact "
    "memories, after the turns and timed apart: retrieval over derived memories without "
    "an LLM.",
)
@click.option(
    "--memories",
    type=click.Choice(list(MEMORIES)),
    multiple=True,
    help="What to search (repeatable): turns, the loaded facts (a hit counts through the "
    "turns it cites), or both. Default: turns; with --facts-from-observations all three.",
)
@qa_options
@pass_state
def locomo(
    state: State,
    /,
    data: Path,
    recipes: tuple[str, ...],
    ablate: bool,
    out: Path | None,
    no_progress: bool,
    database: str | None,
    facts: bool,
    memories: tuple[str, ...],
    **llm_run: Any,
) -> None:
    """Benchmark retrieval on a LoCoMo file (locomo10.json layout).

    Prints, per recipe, turn and session recall and nDCG per category, plus
    ingest and search speed. With --llm, answers the questions with the LLM
    instead and prints judge accuracy, F1 and context tokens per category, and the
    cost of LLM extraction at ingest (remem.bench.qa, docs/llm.md).

    \b
    Example:
      remem bench locomo locomo10.json --recipe default --recipe rrf --out locomo.json
      remem bench locomo locomo10.json --database "$(remem postgres start)"
      remem bench locomo locomo10.json --facts-from-observations --memories facts --memories both
      remem bench locomo locomo10.json --llm --conversations 1 --limit-questions 20
    """
    only = {"--facts-from-observations": facts, "--memories": memories, "--ablate": ablate,
            "--database": database}  # fmt: skip
    if wants_qa(llm_run, only):
        run_qa_command(state, data, recipes, out, not no_progress, llm_run)
        return
    if not facts and set(memories) - {"turns"}:
        raise click.BadOptionUsage("memories", "searching facts needs --facts-from-observations")
    searched = memories or (tuple(MEMORIES) if facts else ("turns",))
    _run_bench(state, "locomo", data, _with_ablations(recipes, ablate), out, not no_progress,
               database, facts, searched)  # fmt: skip


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
    database: str | None,
) -> None:
    """Benchmark retrieval on a LongMemEval file (longmemeval_s.json layout).

    Prints, per recipe, session recall and nDCG per question type (and turn
    recall where turns are marked has_answer), plus ingest and search speed.

    \b
    Example:
      remem bench longmemeval longmemeval_s.json --out lme.json
    """
    _run_bench(state, "longmemeval", data, _with_ablations(recipes, ablate), out,
               not no_progress, database)  # fmt: skip


def _run_bench(
    state: State,
    benchmark: str,
    data: Path,
    recipes: Sequence[str],
    out: Path | None,
    progress: bool,
    database: str | None = None,
    facts: bool = False,
    memories: Sequence[str] = ("turns",),
) -> None:
    """Check the file's layout, run every recipe (on each of ``memories``), print tables or
    JSON, write ``--out``."""
    if out is not None:
        check_writable(out)
    dataset = load_dataset(data, observations=facts)
    found = dataset.name
    if found != benchmark:
        raise DataFormatError(
            f"{data} is a {_BENCH_TITLES[found]} file, not {_BENCH_TITLES[benchmark]}; "
            f"run `remem bench {found} {data}`"
        )
    columns = LOCOMO_COLUMNS if benchmark == "locomo" else LONGMEMEVAL_COLUMNS
    show = None if state.as_json else (lambda r: click.echo(_format_report(r, columns)))
    embedder = create_embedder(load_settings(state.db).embedder)
    reports = run(dataset, list(dict.fromkeys(recipes)), embedder, progress, show, database,
                  facts, memories)  # fmt: skip
    if len(reports) > 1 and not state.as_json:
        overall = {_label(r): r["retrieval"]["overall"] for r in reports}
        click.echo(format_table(overall, _present(columns, overall), "recipe"))
        for metric in KEY_METRICS[benchmark]:
            click.echo(f"\n{metric} per category:")
            click.echo(format_table(*_by_category(reports, metric)))
        costs = _step_costs(reports, KEY_METRICS[benchmark])
        if costs:
            click.echo("\nwhat each step of default costs (mean ms per search) and gains "
                       "(default minus default-no-<step>):")  # fmt: skip
            click.echo(format_table(costs, list(next(iter(costs.values()))), "step"))
    payload: Any = reports[0] if len(reports) == 1 else reports
    write_report(out, payload)
    if state.as_json:
        click.echo(to_json(payload))


def _label(report: Mapping[str, Any]) -> str:
    """A report's row name: its recipe, and what it searched unless that was turns."""
    memories = report.get("memories", "turns")
    return report["recipe"] if memories == "turns" else f"{report['recipe']} [{memories}]"


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
        rows[_label(report)] = row
    columns = list(dict.fromkeys(c for row in rows.values() for c in row))
    return rows, columns, "recipe"


def _step_costs(
    reports: Sequence[Mapping[str, Any]], metrics: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per mechanism of ``default`` with an ablation in ``reports``: its mean
    milliseconds per search in the default run and what it adds to each metric."""
    by_name = {_label(r): r for r in reports}
    if "default" not in by_name:
        return {}
    base = by_name["default"]
    steps = base["search"].get("steps_ms", {})
    rows: dict[str, dict[str, float]] = {}
    for name, report in by_name.items():
        mechanism = name.removeprefix("default-no-")
        if mechanism == name:
            continue
        row = {"ms": steps.get(mechanism, float("nan"))}
        for metric in metrics:
            with_it = base["retrieval"]["overall"].get(metric, float("nan"))
            row[f"+{metric}"] = with_it - report["retrieval"]["overall"].get(metric, float("nan"))
        rows[mechanism] = row
    return rows


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
        f"recipe={report['recipe']}  memories={report.get('memories', 'turns')}  "
        f"embedder={report['embedder']}",
        f"{report['n_conversations']} conversations, {report['n_questions']} questions scored, "
        f"{report['skipped_questions']} skipped",
        "",
        format_table(rows, _present(columns, rows), "category"),
        "",
        *_ingest_lines(ingest),
        *_facts_lines(report.get("facts_ingest")),
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


def _ingest_lines(ingest: Mapping[str, Any]) -> list[str]:
    """Ingest speed, and the raw embedder's on the same texts (when it was measured)."""
    lines = [
        f"ingest: {ingest['turns']} turns in {ingest['seconds']:.2f} s "
        f"({ingest['turns_per_second']:.1f} turns/s)"
    ]
    if ingest.get("embedder_seconds"):
        lines += [
            "  raw embedder on the same texts and batches, timed before each add: "
            f"{ingest['embedder_seconds']:.2f} s "
            f"({ingest['embedder_turns_per_second']:.1f} turns/s); ingest runs at "
            f"{ingest['speed_vs_embedder']:.0%} of its speed",
            f"  split: embedding {ingest['embedder_seconds']:.2f} s, the rest (enrichment, "
            f"summaries, writes) {ingest['other_seconds']:.2f} s = "
            f"{ingest['overhead']:+.0%} on top of embedding",
        ]
    if ingest.get("embedding_in_add_seconds"):
        lines.append(
            f"  inside add: embedding {ingest['embedding_in_add_seconds']:.2f} s, the rest "
            f"{ingest['rest_in_add_seconds']:.2f} s ({ingest['rest_share']:.0%} of ingest)"
        )
    return lines


def _facts_lines(facts: Mapping[str, Any] | None) -> list[str]:
    """The observation facts loaded beside the turns (extra ingest, timed apart)."""
    if not facts:
        return []
    return [
        f"facts: {facts['facts']} observations written as fact memories in "
        f"{facts['seconds']:.2f} s ({facts['facts_per_second']:.1f} facts/s), after the turns; "
        f"{facts['skipped']} skipped (no citation names a turn), "
        f"{facts['dropped_citations']} citations naming no turn dropped"
    ]


def _context_lines(context: Mapping[str, float]) -> list[str]:
    """Context-budget recall, one line per budget."""
    budgets = sorted({int(k.split("@")[1][:-3]) for k in context})
    return [
        f"context @{b} tokens: recall_all {context[f'recall_all@{b}tok']:.3f}, "
        f"recall_any {context[f'recall_any@{b}tok']:.3f}, "
        f"mean {context[f'mean_tokens@{b}tok']:.0f} tokens"
        for b in budgets
    ]


# ------------------------------------------------------------------- live, concurrency

LIVE_COLUMNS = (
    "prefill_turns/s", "embed_p50", "warm_p50", "warm_p95", "after_add_p50", "after_add_p95",
    "add_p50", "add_p95", "after/warm",
)  # fmt: skip


def _sizes(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    """``1000,10000`` -> ``(1000, 10000)``; each size at least 1."""
    try:
        sizes = tuple(int(part) for part in value.replace("_", "").split(",") if part.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise click.BadParameter(f"{value!r}: give positive numbers of turns, e.g. 1000,10000")
    return sizes


@bench.command("live")
@click.option(
    "--sizes",
    default="1000,10000,100000",
    show_default=True,
    callback=_sizes,
    help="Scope sizes to measure, in turns of one user, comma-separated. Pre-filling runs "
    "at ingest speed: 100000 takes about 15-20 minutes here.",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, 10_000),
    default=50,
    show_default=True,
    help="Searches (and adds) timed per measurement, after 5 uncounted warm-up rounds.",
)
@click.option("--recipe", default="default", show_default=True, callback=check_recipes,
              help=f"Retrieval recipe: {RECIPE_HELP}.")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as JSON.")  # fmt: skip
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
@pass_state
def live(
    state: State,
    sizes: tuple[int, ...],
    rounds: int,
    recipe: str,
    out: Path | None,
    no_progress: bool,
) -> None:
    """Search speed for one user as the conversation grows.

    For each size, a fresh temporary database is pre-filled with that many turns
    of synthetic chat (sessions of 20-40 turns, one add per session), then the
    same queries are timed: warm (no write in between), right after adding one
    message to a live session, the add itself, and the query embedding alone.
    Times are milliseconds, wall clock around each call.

    \b
    Example:
      remem bench live --sizes 1000,10000 --out live.json
    """
    if out is not None:
        check_writable(out)
    embedder = create_embedder(load_settings(state.db).embedder)
    try:
        report = run_live(sizes, embedder, recipe, rounds, progress=not no_progress,
                          on_size=None if state.as_json else _echo_size)  # fmt: skip
    finally:
        embedder.close()
    write_report(out, report)
    if state.as_json:
        click.echo(to_json(report))
        return
    click.echo(f"\nlive  recipe={report['recipe']}  embedder={report['embedder']}  "
               f"{report['rounds']} rounds, {report['warmup']} warm-up  (ms)")  # fmt: skip
    rows = {f"{r['size']:,} turns": _live_row(r) for r in report["sizes"]}
    click.echo(format_table(rows, LIVE_COLUMNS, "size"))


def _live_row(result: Mapping[str, Any]) -> dict[str, float]:
    warm, after, add = result["warm_search"], result["search_after_add"], result["add"]
    return {
        "prefill_turns/s": result["prefill"]["turns_per_second"],
        "embed_p50": result["embed_query"]["p50_ms"],
        "warm_p50": warm["p50_ms"], "warm_p95": warm["p95_ms"],
        "after_add_p50": after["p50_ms"], "after_add_p95": after["p95_ms"],
        "add_p50": add["p50_ms"], "add_p95": add["p95_ms"],
        "after/warm": result["after_add_over_warm"],
    }  # fmt: skip


def _echo_size(result: Mapping[str, Any]) -> None:
    """One line as each size finishes (a 100k run is long)."""
    row = _live_row(result)
    click.echo(
        f"{result['size']:,} turns ({result['memories']:,} memories): search warm "
        f"p50 {row['warm_p50']:.1f} ms, after add p50 {row['after_add_p50']:.1f} ms "
        f"(x{row['after/warm']:.2f}), add p50 {row['add_p50']:.1f} ms, "
        f"query embedding p50 {row['embed_p50']:.1f} ms",
        err=True,
    )


@bench.command("latency")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A LoCoMo or LongMemEval file: time its conversation closest to 600 turns, "
              "with its own questions, instead of synthetic chat.")  # fmt: skip
@click.option("--recipe", "recipes", multiple=True, callback=check_recipes,
              default=DEFAULT_RECIPES, show_default=True,
              help=f"Recipe to time (repeatable): {RECIPE_HELP}.")  # fmt: skip
@click.option("--user-size", type=click.IntRange(0, 1_000_000), default=USER_SIZE,
              show_default=True,
              help="Turns of synthetic chat in the user scope; 0 skips that scope.")  # fmt: skip
@click.option("--rounds", type=click.IntRange(1, 10_000), default=ROUNDS, show_default=True,
              help="Queries timed per scope, after 5 uncounted warm-up rounds.")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as JSON.")  # fmt: skip
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
@pass_state
def latency(
    state: State,
    data: Path | None,
    recipes: tuple[str, ...],
    user_size: int,
    rounds: int,
    out: Path | None,
    no_progress: bool,
) -> None:
    """Search time per recipe beside the query embedding's, measured in the same run.

    Two scopes, each in a fresh temporary database: a conversation of about 600
    turns (synthetic chat, or the --data conversation closest to that size) and
    one user with --user-size turns. Each round embeds the query alone, then
    searches once per recipe; p50/p95 in milliseconds, wall clock around each
    call, and each recipe's p50 as a multiple of the embedding's. Then the mean
    time of each step of the default recipe, from its explain output.

    \b
    Example:
      remem bench latency --recipe default --recipe bm25 --user-size 10000 --out latency.json
    """
    if out is not None:
        check_writable(out)
    dataset = load_dataset(data) if data is not None else None
    embedder = create_embedder(load_settings(state.db).embedder)

    def show(scope: Mapping[str, Any]) -> None:
        click.echo(_latency_block(scope, embedder.model_id, rounds))

    try:
        report = run_latency(dataset, recipes, user_size, rounds, embedder,
                             progress=not no_progress,
                             on_scope=None if state.as_json else show)  # fmt: skip
    finally:
        embedder.close()
    write_report(out, report)
    if state.as_json:
        click.echo(to_json(report))


LATENCY_COLUMNS = ("p50", "p95", "x embed", "p95/p50")


def _latency_row(timing: Mapping[str, float], over_embed: float) -> dict[str, float]:
    return {"p50": timing["p50_ms"], "p95": timing["p95_ms"], "x embed": over_embed,
            "p95/p50": timing["p95_over_p50"]}  # fmt: skip


def _latency_block(scope: Mapping[str, Any], embedder: str, rounds: int) -> str:
    """One scope: a header, the table (embed, then each recipe) and the step means."""
    embed = scope["embed_query"]
    rows = {"embed": _latency_row(embed, 1.0)}
    for name, timing in scope["recipes"].items():
        rows[name] = _latency_row(timing, timing["over_embed_p50"])
    steps = scope["steps_ms"]
    breakdown = ("  ".join(f"{step} {ms:.2f}" for step, ms in steps.items()) if steps
                 else f"not reported (search's explain output has no {TIMINGS_KEY!r})")  # fmt: skip
    return "\n".join([
        f"\nlatency  {scope['scope']} scope: {scope['turns']:,} turns, {scope['memories']:,} "
        f"memories ({scope['source']}, {scope['queries']} distinct queries)",
        f"embedder={embedder}  {rounds} rounds after {WARMUP} warm-up  (ms)",
        format_table(rows, LATENCY_COLUMNS, "search"),
        f"{STEPS_RECIPE} steps, mean ms: {breakdown}",
    ])  # fmt: skip


@bench.command("concurrency")
@click.option("--writers", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Writer processes.")  # fmt: skip
@click.option("--searchers", type=click.IntRange(0, 64), default=2, show_default=True,
              help="Searcher processes.")  # fmt: skip
@click.option("--seconds", type=click.FloatRange(0.1, 3600), default=30.0, show_default=True,
              help="How long each writer writes.")  # fmt: skip
@click.option(
    "--adds-per-writer",
    type=click.IntRange(1, 1_000_000),
    help="Make this many add calls per writer instead of writing for --seconds.",
)
@click.option("--users", type=click.IntRange(1, 100), default=2, show_default=True,
              help="Users the writers share.")  # fmt: skip
@click.option("--sessions", type=click.IntRange(1, 100), default=2, show_default=True,
              help="Sessions per user the writers share.")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as JSON.")  # fmt: skip
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.option("--database", metavar="URL",
              help="Run on this empty database (e.g. postgresql://...) instead of a fresh "
              "temporary SQLite file.")  # fmt: skip
@pass_state
def concurrency(
    state: State,
    writers: int,
    searchers: int,
    seconds: float,
    adds_per_writer: int | None,
    users: int,
    sessions: int,
    out: Path | None,
    no_progress: bool,
    database: str | None,
) -> None:
    """Writer and searcher processes on one database: what breaks.

    Writers add 1-3 messages at a time, with client ids, to shared users and
    sessions; searchers search until the writers are done. Each process opens its
    own Memory on a fresh temporary file, or on --database. Then it counts failed searches and adds
    (by exception type), acknowledged messages that are missing, messages cited
    by more than one turn memory, and sessions with more than one current summary.

    \b
    Example:
      remem bench concurrency --writers 4 --searchers 2 --seconds 30 --out conc.json
      remem bench concurrency --database "$(remem postgres start)" --adds-per-writer 20
    """
    if out is not None:
        check_writable(out)
    report = run_concurrency(
        writers, searchers, seconds, adds_per_writer, users, sessions,
        load_settings(state.db).embedder, progress=not no_progress, database=database,
    )  # fmt: skip
    write_report(out, report)
    if state.as_json:
        click.echo(to_json(report))
        return
    click.echo("\n".join(_concurrency_lines(report)))


def _concurrency_lines(report: Mapping[str, Any]) -> list[str]:
    adds, searches, found = report["adds"], report["searches"], report["check"]
    procs = report["processes"]
    how = (f"{report['adds_per_writer']} adds each" if report["adds_per_writer"]
           else f"{report['seconds']:g} s")  # fmt: skip
    return [
        f"concurrency  {report['writers']} writers ({how}), {report['searchers']} searchers, "
        f"users {len(report['users'])} x sessions {len(report['sessions'])}, "
        f"{report['elapsed_seconds']:.1f} s",
        f"adds: {adds['calls']} calls, {adds['failed']} failed, p50 {adds['p50_ms']:.1f} ms, "
        f"p95 {adds['p95_ms']:.1f} ms",
        *_error_lines(adds["errors"]),
        f"searches: {searches['searches']}, {searches['failed']} failed, "
        f"p50 {searches['p50_ms']:.1f} ms, p95 {searches['p95_ms']:.1f} ms",
        *_error_lines(searches["errors"]),
        f"messages: {found['acknowledged_messages']} acknowledged, {found['stored_messages']} "
        f"stored, {found['lost']} lost, {found['duplicated']} duplicated, "
        f"{found['unacknowledged_stored']} stored without acknowledgement",
        f"current summaries: {found['duplicate_current_summaries']} sessions with more than "
        f"one ({found['extra_current_summaries']} extra)",
        *([f"processes: {procs['missing']} did not report"] if procs["missing"] else []),
        *(f"crashed: {line}" for line in procs["crashed"]),
    ]  # fmt: skip


def _error_lines(errors: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return [
        f"  {name} x{info['count']}: {example}"
        for name, info in errors.items()
        for example in info["examples"][:1]
    ]


bench.add_command(serve_crash)
bench.add_command(serve_writers)
bench.add_command(serve_hostile)
bench.add_command(serve_load)
bench.add_command(scale)
