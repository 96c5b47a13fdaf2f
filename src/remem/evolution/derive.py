"""Deriving memories from messages with the LLM: extraction, then consolidation, returned
as one ``WriteBatch`` for the caller (the job queue) to write.

Nothing here writes. A derivation either yields a whole batch or raises (``LLMError``
when the model's answer stayed invalid or the endpoint failed), so a job that fails
leaves the store exactly as it was and can be retried.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from remem.errors import ConfigError, InvalidInputError
from remem.llms.base import Usage
from remem.models import Message, Scope
from remem.util import utcnow

if TYPE_CHECKING:
    from remem.engine import Memory
    from remem.evolution.consolidate import Decision
    from remem.stores.base import WriteBatch

ACTOR = "remem"


@dataclass(frozen=True)
class Derivation:
    """What deriving from some messages would write, and what it took.

    ``batch``: the memories, retirements and notes to write (actor ``"remem"``, its
    reason naming the prompt versions); ``candidates``: memories extraction proposed;
    ``decisions``: what consolidation decided for each; ``dropped``: extracted items
    discarded (no valid citation, empty, duplicate); ``llm_calls`` and ``usage``: the
    LLM calls of extraction and consolidation together; ``seconds``: wall time.
    """

    batch: WriteBatch
    candidates: int
    decisions: tuple[Decision, ...]
    dropped: int
    llm_calls: int
    usage: Usage
    seconds: float


def derive(
    memory: Memory, scope: Scope, messages: Sequence[Message], now: datetime | None = None
) -> Derivation:
    """Facts, events, profile entries and procedures from ``messages`` (one LLM call per
    ``memory.config.derive.batch_turns`` of them), consolidated with the memories
    ``scope`` holds, as a batch to write; raises ``ConfigError`` without an LLM and
    ``LLMError`` when extraction or consolidation failed (nothing is returned then)."""
    # the prompts need pydantic (the [llm] extra): imported only when deriving
    from remem.evolution.consolidate import Plan, consolidate, write_batch
    from remem.evolution.consolidate_prompt import CONSOLIDATE_VERSION
    from remem.formation.extract import EXTRACT_VERSION, LLMExtractor

    started = time.perf_counter()
    llm = memory.llm
    if llm is None:
        raise ConfigError(
            "deriving memories needs an LLM: pass Memory(..., llm=...) or set "
            "MemoryConfig.llm (REMEM_LLM_BASE_URL and REMEM_LLM_MODEL)"
        )
    _check_scope(scope, messages)
    moment = now or utcnow()
    extractor = LLMExtractor(llm, batch_turns=memory.config.derive.batch_turns)
    extracted = extractor.extract(messages)
    candidates = list(extracted.candidates)
    plan = (
        consolidate(memory, scope, candidates, moment)
        if candidates
        else Plan((), (), (), (), 0, Usage())
    )
    batch = write_batch(
        plan, actor=ACTOR, reason=f"derive ({EXTRACT_VERSION}, {CONSOLIDATE_VERSION})"
    )
    return Derivation(
        batch=batch,
        candidates=len(extracted.candidates),
        decisions=tuple(plan.decisions),
        dropped=extracted.dropped,
        llm_calls=extracted.llm_calls + plan.llm_calls,
        usage=extracted.usage + plan.usage,
        seconds=time.perf_counter() - started,
    )


def _check_scope(scope: Scope, messages: Sequence[Message]) -> None:
    """Every message belongs to ``scope`` (its session too, when the scope names one):
    a derived memory is written there and cites them."""
    for message in messages:
        own = message.scope
        if (own.namespace, own.user_id, own.agent_id) != (
            scope.namespace, scope.user_id, scope.agent_id,
        ) or (scope.session_id is not None and own.session_id != scope.session_id):  # fmt: skip
            raise InvalidInputError(
                f"message {message.id} belongs to another scope than the one derived into; "
                "derive each user/agent's messages separately"
            )
