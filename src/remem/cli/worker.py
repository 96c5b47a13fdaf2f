"""``remem worker`` runs the job queue (deriving memories with the LLM); ``remem jobs``
lists jobs and retries failed ones."""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

import click

from remem.cli.common import (
    State,
    arg_text,
    compact,
    db_option,
    format_when,
    pass_state,
    shorten,
    to_json,
)
from remem.config import LLMConfig, MemoryConfig
from remem.engine import Memory
from remem.errors import ConfigError
from remem.jobs import run_jobs, worker_name
from remem.models import JOB_STATUSES, Job, JobRun, JobsReport, Scope
from remem.settings import load_settings


def _set_namespace(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(State).namespace = value


namespace_option = click.option(
    "--namespace",
    metavar="NS",
    expose_value=False,
    is_eager=True,
    callback=_set_namespace,
    help="Namespace (tenant) whose jobs to run (overrides the one before the command).",
)


@click.command()
@db_option
@namespace_option
@click.option("--all", "every", is_flag=True, help="Run the jobs of every namespace.")
@click.option("--once", is_flag=True, help="Run the jobs that are due, then exit.")
@click.option(
    "--poll",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between looks at an empty queue.",
)
@click.option("--llm-url", help="OpenAI-compatible LLM endpoint.  [env: REMEM_LLM_BASE_URL]")
@click.option("--llm-model", help="Model name at that endpoint.  [env: REMEM_LLM_MODEL]")
@pass_state
def worker(
    state: State,
    every: bool,
    once: bool,
    poll: float,
    llm_url: str | None,
    llm_model: str | None,
) -> None:
    """Run queued jobs (deriving facts, events, profile entries and procedures from
    messages added with --no-wait / add(wait=False)) until Ctrl-C or SIGTERM.

    Prints one line per job run. Several workers, on this host or others, may share one
    database: each job is claimed by one of them, and a job whose worker died is taken
    over once its lease runs out. Ctrl-C or SIGTERM stops after the current job (a
    second Ctrl-C stops at once; that job is rerun later).

    \b
    Examples:
      export REMEM_LLM_BASE_URL=http://localhost:11434/v1 REMEM_LLM_MODEL=qwen2.5
      remem worker --db notes.db
      remem worker --db notes.db --once --llm-url http://localhost:8080/v1 --llm-model local
    """
    config = _with_llm(_config(state), llm_url, llm_model)
    if config.llm is None:
        raise ConfigError(
            "remem worker needs an LLM: set REMEM_LLM_BASE_URL and REMEM_LLM_MODEL, or pass "
            "--llm-url and --llm-model"
        )
    stop = _Flag()
    with Memory(config) as memory, _stopping_on_signals(stop):
        namespace = None if every else memory.namespace
        name = worker_name()
        where = "every namespace" if every else f"namespace {memory.namespace!r}"
        click.echo(f"worker {name} running the jobs of {where}", err=True)
        runs: list[JobRun] = []
        while not stop.is_set():
            report = run_jobs(memory, namespace, name, stop=stop,
                              on_run=lambda run: _print_run(state, run))  # fmt: skip
            runs += report.runs
            if once:
                break
            if not report.runs:
                stop.wait(poll)
        click.echo(_summary(JobsReport(tuple(runs))), err=True)


def _config(state: State) -> MemoryConfig:
    config = load_settings(state.db)
    if state.namespace is not None:
        config = dataclasses.replace(config, namespace=state.namespace)
    return config


def _with_llm(config: MemoryConfig, url: str | None, model: str | None) -> MemoryConfig:
    """The settings' LLM, with the endpoint or model the options name instead."""
    if url is None and model is None:
        return config
    base = config.llm or LLMConfig()
    chosen = dataclasses.replace(base, base_url=url or base.base_url, model=model or base.model)
    if chosen.base_url is None or chosen.model is None:
        raise click.UsageError(
            "an LLM needs both an endpoint and a model: give --llm-url and --llm-model "
            "(or REMEM_LLM_BASE_URL and REMEM_LLM_MODEL)"
        )
    if not chosen.base_url.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http:// or https:// URL", param_hint="--llm-url")
    return dataclasses.replace(config, llm=chosen)


class _Flag:
    """The worker's stop flag, set by its signal handler. Not a ``threading.Event``: its
    ``set`` takes the event's lock, and a signal landing while the main thread holds that
    lock (inside ``Event.wait``) deadlocks the worker; a plain attribute cannot."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early (within 50 ms) once set."""
        end = time.monotonic() + seconds
        while not self._set and (left := end - time.monotonic()) > 0:
            time.sleep(min(0.05, left))
        return self._set


@contextmanager
def _stopping_on_signals(stop: _Flag) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop`` (the worker ends after its current job); a second
    Ctrl-C raises ``KeyboardInterrupt`` at once. The old handlers come back on exit."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        with suppress(RuntimeError):  # the main thread was writing to stderr itself
            click.echo("stopping after the current job (Ctrl-C again to stop now)", err=True)

    old = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _print_run(state: State, run: JobRun) -> None:
    if state.as_json:
        plain = {k: v for k, v in dataclasses.asdict(run).items() if k != "memories"}
        click.echo(compact({**plain, "memory_ids": [m.id for m in run.memories]}))
        return
    click.echo(describe_run(run))


def describe_run(run: JobRun) -> str:
    """One line for a job run: how it ended, what it did or why it failed."""
    head = f"{run.status:<7}  {run.job_id}  {run.kind}  attempt {run.attempts}"
    if run.status == "done":
        r = run.result
        calls = r.get("llm_calls")
        did = f"{r.get('messages', '?')} messages -> {len(run.memories)} memories"
        if calls is not None:
            did += f", {calls} LLM call{'s' if calls != 1 else ''}"
        return f"{head}  {did}, {r.get('seconds', 0):.2f} s"
    retry = f" (retry in {run.retry_in:g} s)" if run.retry_in is not None else ""
    return f"{head}{retry}: {shorten(run.error or '', 200)}"


def _summary(report: JobsReport) -> str:
    lost = len(report.runs) - report.done - report.failed - report.retrying
    return (f"ran {len(report.runs)} jobs: {report.done} done, {report.failed} failed, "
            f"{report.retrying} to retry" + (f", {lost} taken over" if lost else ""))  # fmt: skip


# ---------------------------------------------------------------------------- jobs


@click.group()
def jobs() -> None:
    """List background jobs, and retry failed ones.

    \b
    Examples:
      remem jobs list --status failed
      remem jobs retry 3f2a9c0d1e7b4c55a1d2e3f4a5b6c7d8
    """


@jobs.command(name="list")
@db_option
@click.option("--status", type=click.Choice(JOB_STATUSES), help="Only jobs of this status.")
@click.option("--limit", "-n", type=int, default=20, show_default=True, help="Rows to show.")
@pass_state
def list_jobs(state: State, status: str | None, limit: int) -> None:
    """List jobs, newest first; a failed one shows why it failed.

    \b
    Example:
      remem jobs list --db notes.db --status failed
    """
    found = state.memory().jobs(status=status, limit=limit)
    if state.as_json:
        click.echo(to_json(found))
        return
    if not found:
        click.echo("no jobs", err=True)
    for job in found:
        click.echo(describe_job(job))


def describe_job(job: Job) -> str:
    """One line for a job, and its error on a second line."""
    line = (f"{job.id}  {job.status:<7}  {job.kind}  {_scope(job.scope)}  "
            f"{len(job.message_ids)} messages  attempts {job.attempts}  "
            f"{format_when(job.updated_at, True)}")  # fmt: skip
    if job.error and job.status != "done":
        line += f"\n{'':34}{shorten(job.error, 200)}"
    return line


def _scope(scope: Scope) -> str:
    parts = [f"{k}={v}" for k, v in (("user", scope.user_id), ("agent", scope.agent_id),
                                     ("session", scope.session_id)) if v]  # fmt: skip
    return " ".join(parts) or "-"


@jobs.command()
@db_option
@click.argument("job_id")
@pass_state
def retry(state: State, job_id: str) -> None:
    """Queue a failed job again, from its first attempt (`remem worker` runs it).

    \b
    Example:
      remem jobs retry 3f2a9c0d1e7b4c55a1d2e3f4a5b6c7d8
    """
    job = state.memory().retry_job(arg_text(job_id, "JOB_ID"))
    click.echo(to_json(job) if state.as_json else f"queued {job.id} again ({job.kind})")
