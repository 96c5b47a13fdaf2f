"""Token-budgeted context: budgets hold, lines cite sources, layout is by session and time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remem import Context, InvalidInputError, Memory
from remem.bench.runner import CONTEXT_BUDGETS, run
from remem.embedders.base import Embedder
from remem.tokens import TOKENIZER_NAME, count_tokens

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture()
def chat(tmp_path: Path, embedder: Embedder) -> Memory:
    memory = Memory(tmp_path / "c.db", embedder=embedder)
    memory.add(
        [{"id": "D1:1", "content": "Where did you move last spring?", "name": "Bo"},
         {"id": "D1:2", "content": "I moved to Lisbon in May, near the river", "name": "Ana"},
         {"id": "D1:3", "content": "Lovely! Do you still paint?", "name": "Bo"}],
        user_id="ana", session_id="s1", timestamp="2023-05-08T13:56:00",
    )  # fmt: skip
    memory.add(
        [{"id": "D2:1", "content": "We adopted a beagle called Oscar", "name": "Ana"},
         {"id": "D2:2", "content": "Oscar loves the parks of Lisbon", "name": "Ana"}],
        user_id="ana", session_id="s2", timestamp="2023-06-10T09:00:00",
    )  # fmt: skip
    return memory


def test_context_fits_the_budget_counted_by_a_real_tokenizer(chat: Memory) -> None:
    for budget in (40, 80, 200, 2000):
        ctx = chat.context("where does Ana live?", user_id="ana", budget_tokens=budget)
        assert isinstance(ctx, Context)
        assert ctx.tokenizer == TOKENIZER_NAME
        assert ctx.tokens <= budget
        assert ctx.tokens == (count_tokens(ctx.text) if ctx.items else 0)


def test_bigger_budgets_hold_more_and_everything_fits_eventually(chat: Memory) -> None:
    sizes = [
        len(chat.context("Lisbon", user_id="ana", budget_tokens=b).items) for b in (60, 120, 5000)
    ]
    assert sizes == sorted(sizes)
    assert sizes[-1] == 5  # every turn of Ana's scope fits in 5000 tokens


def test_context_groups_by_session_in_time_order_and_cites_sources(chat: Memory) -> None:
    ctx = chat.context("Lisbon", user_id="ana", budget_tokens=5000)
    lines = ctx.text.splitlines()
    assert lines[1] == "## 8 May 2023 (session s1)"
    assert lines[2] == "- 13:56 Bo: Where did you move last spring? [D1:1]"  # turn order, not rank
    assert lines.index("## 10 June 2023 (session s2)") > lines.index(lines[4])
    assert ctx.source_ids == ("D1:1", "D1:2", "D1:3", "D2:1", "D2:2")


def test_the_best_hit_is_packed_first_when_little_fits(chat: Memory) -> None:
    best = chat.search("beagle Oscar", user_id="ana", limit=1)[0]
    ctx = chat.context("beagle Oscar", user_id="ana", budget_tokens=45)
    assert [item.memory.id for item in ctx.items] == [best.memory.id]
    assert best.source_ids == ("D2:1",)


def test_a_budget_that_fits_nothing_gives_an_empty_context(chat: Memory) -> None:
    ctx = chat.context("Lisbon", user_id="ana", budget_tokens=5)
    assert (ctx.text, ctx.items, ctx.tokens) == ("", (), 0)


@pytest.mark.parametrize("budget", [0, -1, 2.5, "100", True])
def test_bad_budgets_are_rejected(chat: Memory, budget: object) -> None:
    with pytest.raises(InvalidInputError, match="budget_tokens"):
        chat.context("Lisbon", user_id="ana", budget_tokens=budget)  # type: ignore[arg-type]


def test_bench_report_has_context_recall_per_budget(embedder: Embedder) -> None:
    (report,) = run(FIXTURES / "locomo_tiny.json", ("default",), embedder, progress=False)
    context = report["context"]
    for budget in CONTEXT_BUDGETS:
        assert 0.0 <= context[f"recall_all@{budget}tok"] <= context[f"recall_any@{budget}tok"] <= 1
        assert 0 < context[f"mean_tokens@{budget}tok"] <= budget
    # the tiny conversations fit whole into 2000 tokens, so all evidence is packed
    assert context["recall_all@2000tok"] == 1.0
    json.dumps(report)
