"""``remem ask``: an answer from memory by the configured LLM, with the memories it cites."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from remem.api import AskRequest
from remem.cli.common import (
    State,
    arg_text,
    pass_state,
    recipe_option,
    scope_options,
    shorten,
    to_json,
)

if TYPE_CHECKING:
    from remem.answer import Answer


@click.command()
@click.argument("question")
@scope_options
@click.option(
    "--budget",
    type=click.IntRange(1, 1_000_000),
    default=1000,
    show_default=True,
    help="Token budget for the memories given to the LLM.",
)
@recipe_option
@click.option(
    "--reference-time",
    help="Resolve relative times ('last week') against this ISO 8601 time instead of now.",
)
@pass_state
def ask(
    state: State,
    question: str,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    budget: int,
    recipe: str | None,
    reference_time: str | None,
) -> None:
    """Answer QUESTION from memory with the configured LLM, citing the memories used.

    The best memories for QUESTION that fit --budget tokens go to the LLM (one call),
    which answers and cites them by number; each citation is shown with its memory
    id and source message ids. Needs an LLM: set REMEM_LLM_BASE_URL and
    REMEM_LLM_MODEL (docs/llm.md).

    \b
    Example:
      remem ask -u ana "where does Ana live?"
    """
    request = AskRequest(
        question=arg_text(question, "QUESTION"), user_id=user_id, agent_id=agent_id,
        session_id=session_id, budget_tokens=budget, recipe=recipe,
        reference_time=reference_time,
    )  # fmt: skip
    answer = request.run(state.memory())
    if state.as_json:
        click.echo(to_json(answer))
        return
    for line in describe(answer):
        click.echo(line)
    usage = answer.usage
    click.echo(
        f"{answer.model}: {answer.context_tokens} context tokens, {usage.prompt_tokens} "
        f"prompt + {usage.completion_tokens} completion tokens ({answer.prompt_version})",
        err=True,
    )


def describe(answer: Answer) -> list[str]:
    """The answer, then each citation: its number, memory id and text, and its sources."""
    lines = [answer.text]
    for citation in answer.citations:
        lines.append(f"[{citation.number}] {citation.memory_id}  {shorten(citation.text, 100)}")
        lines.append(f"{'':4}sources: {', '.join(citation.source_ids) or '-'}")
    if not answer.citations:
        lines.append("(no memories cited)")
    return lines
