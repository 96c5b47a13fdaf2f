"""``remem bench locomo --llm``: the options of the QA run with an LLM, and the run itself
(``remem.bench.qa``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from remem.bench.datasets import load_dataset
from remem.cli.common import F, State, check_writable, to_json, write_report
from remem.config import LLMConfig
from remem.errors import ConfigError, DataFormatError
from remem.registry import create_embedder, create_llm
from remem.settings import load_settings

QA_DEFAULTS: dict[str, Any] = {
    "llm_base_url": None, "llm_model": None, "judge_model": None, "budget": 1000,
    "extract": True, "conversations": None, "sessions": None, "limit_questions": None,
}  # fmt: skip
"""The options that only an ``--llm`` run takes, and their defaults."""


def qa_options(func: F) -> F:
    """``--llm`` and the options of its runs (their values reach the command as keyword
    arguments: ``llm`` and the names in ``QA_DEFAULTS``)."""
    count = click.IntRange(1, 1_000_000)
    options = [
        click.option("--llm", is_flag=True, help="Answer each question with the LLM from a "
                     "token-budgeted context (Memory.ask) and score it: judge accuracy and "
                     "F1 per category, context tokens, ingest cost. Needs an endpoint: "
                     "REMEM_LLM_BASE_URL and REMEM_LLM_MODEL, or the two options below."),
        click.option("--llm-base-url", metavar="URL", help="With --llm: the OpenAI-compatible "
                     "endpoint (overrides REMEM_LLM_BASE_URL)."),
        click.option("--llm-model", help="With --llm: the model that answers (overrides "
                     "REMEM_LLM_MODEL)."),
        click.option("--judge-model", help="With --llm: the model that judges answers, at the "
                     "same endpoint.  [default: the answering model]"),
        click.option("--budget", type=count, default=QA_DEFAULTS["budget"],
                     show_default=True, help="With --llm: context tokens per question."),
        click.option("--extract/--no-extract", default=QA_DEFAULTS["extract"], show_default=True,
                     help="With --llm: derive memories from each session with the LLM at "
                     "ingest, and report what it cost per turn."),
        click.option("--conversations", type=count, help="Only the first N conversations."),
        click.option("--sessions", type=count, help="Only the first N sessions of each "
                     "conversation (and the questions whose evidence is in them)."),
        click.option("--limit-questions", type=count, help="Only the first N questions."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def wants_qa(options: dict[str, Any], retrieval_only: dict[str, Any]) -> bool:
    """Whether this is an ``--llm`` run. Refuses the options that need ``--llm`` without
    it, and with it the retrieval-only ones given (``retrieval_only``: flag -> value)."""
    if options["llm"]:
        clashing = [flag for flag, value in retrieval_only.items() if value]
        if clashing:
            raise click.UsageError(f"{clashing[0]} is for retrieval runs, not with --llm")
        return True
    given = [name for name, default in QA_DEFAULTS.items() if options[name] != default]
    if given:
        raise click.UsageError(f"--{given[0].replace('_', '-')} needs --llm")
    return False


def run_qa_command(
    state: State,
    data: Path,
    recipes: Sequence[str],
    out: Path | None,
    progress: bool,
    options: dict[str, Any],
) -> None:
    """Load and slice the file, build the answering and judging LLMs, run, print, write."""
    from remem.bench.qa import QaSettings, format_qa_report, run_qa, sliced

    if out is not None:
        check_writable(out)
    dataset = load_dataset(data)
    if dataset.name != "locomo":
        raise DataFormatError(f"{data} is not a LoCoMo file; --llm runs on LoCoMo files")
    dataset = sliced(dataset, options["conversations"], options["sessions"],
                     options["limit_questions"])  # fmt: skip
    settings = load_settings(state.db)
    answering = _llm_config(settings.llm, options["llm_base_url"], options["llm_model"])
    judging = dataclasses.replace(answering, model=options["judge_model"] or answering.model)
    qa = QaSettings(tuple(dict.fromkeys(recipes)), options["budget"], options["extract"],
                    settings.derive)  # fmt: skip
    show = None if state.as_json else (lambda r: click.echo(format_qa_report(r)))
    with create_llm(answering) as llm, create_llm(judging) as judge:
        embedder = create_embedder(settings.embedder)
        try:
            reports = run_qa(dataset, llm, judge, embedder, qa, progress, show)
        finally:
            embedder.close()
    payload: Any = reports[0] if len(reports) == 1 else reports
    write_report(out, payload)
    if state.as_json:
        click.echo(to_json(payload))


def _llm_config(configured: LLMConfig | None, base_url: str | None, model: str | None) -> LLMConfig:
    """The endpoint: the REMEM_LLM_* settings with the options' overrides; answers at
    temperature 0 unless REMEM_LLM_OPTIONS says otherwise."""
    base = configured or LLMConfig()
    config = dataclasses.replace(
        base, base_url=base_url or base.base_url, model=model or base.model,
        options={"temperature": 0.0, **base.options},
    )  # fmt: skip
    if not config.base_url or not config.model:
        raise ConfigError(
            "--llm needs an LLM endpoint: give --llm-base-url and --llm-model, or set "
            "REMEM_LLM_BASE_URL and REMEM_LLM_MODEL (docs/llm.md)"
        )
    return config
