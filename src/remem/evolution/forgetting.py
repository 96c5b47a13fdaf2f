"""Forgetting policies: which current memories of a scope to archive, and why (pure).

- ``retention``: memories whose retention (``remem.evolution.retention``) fell below the
  threshold (default ``DEFAULT_THRESHOLD``); memories whose time to live already ran out
  are left to ``ttl``.
- ``ttl``: memories whose ``expires_at`` has passed (search already hides them; this
  archives them explicitly, with a reason in their history).

Pinned memories are never archived by any policy. Archiving sets ``expired_at`` (search
and list stop showing the memory; ``get`` and ``history`` still do); nothing is deleted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from remem.errors import InvalidInputError
from remem.evolution.retention import days_between, expired, last_recall, memory_retention
from remem.models import ForgetReport, Forgotten, MemoryRecord
from remem.stores.base import MemoryFilter, Store
from remem.util import shown

POLICIES = ("retention", "ttl")
DEFAULT_THRESHOLD = 0.05
PAGE = 2000  # memories read per query while a policy examines a scope
ACTOR = "forget"  # who the ARCHIVE events name


@dataclass(frozen=True)
class Policy:
    """A checked forgetting policy: its name and, for ``retention``, the threshold."""

    name: str
    threshold: float | None = None


@dataclass
class Decision:
    """What a policy chose among a scope's memories (``decide``)."""

    archive: list[Forgotten] = field(default_factory=list)
    examined: int = 0
    pinned_kept: int = 0


def policy(name: Any, threshold: Any = None) -> Policy:
    """The policy ``name`` with its threshold checked; ``InvalidInputError`` says what
    is allowed."""
    if name not in POLICIES:
        raise InvalidInputError(
            f"unknown forgetting policy {shown(name)}; choose one of {', '.join(POLICIES)}"
        )
    if name == "ttl":
        if threshold is not None:
            raise InvalidInputError(
                "the ttl policy archives memories whose expires_at has passed and takes no "
                "threshold; leave it out, or use policy 'retention'"
            )
        return Policy("ttl")
    if threshold is None:
        return Policy("retention", DEFAULT_THRESHOLD)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
        or not 0 < threshold <= 1
    ):
        raise InvalidInputError(
            f"threshold must be a retention above 0 and at most 1 (e.g. 0.05: archive "
            f"what keeps less than 5%), not {shown(threshold)}"
        )
    return Policy("retention", float(threshold))


def decide(records: Iterable[MemoryRecord], rule: Policy, now: datetime) -> Decision:
    """The current memories ``rule`` archives at ``now``, each with its reason; pinned
    memories that would otherwise go are counted in ``pinned_kept``."""
    out = Decision()
    for record in records:
        if record.superseded_by is not None or record.expired_at is not None:
            continue
        out.examined += 1
        if rule.name == "ttl":
            due = expired(record, now)
            chosen = Forgotten(record, None, ttl_reason(record, now)) if due else None
        else:
            chosen = _by_retention(record, rule.threshold or DEFAULT_THRESHOLD, now)
        if chosen is None:
            continue
        if record.pinned:
            out.pinned_kept += 1
        else:
            out.archive.append(chosen)
    return out


def forget(
    store: Store, flt: MemoryFilter, rule: Policy, dry_run: bool, now: datetime
) -> ForgetReport:
    """Apply ``rule`` at ``now`` to the memories ``flt`` admits: read them in pages from
    one snapshot, decide, then (unless ``dry_run``) archive the chosen ones in one write,
    which leaves alone any that was recalled or updated since it was read."""
    with store.snapshot():
        decision = decide(_pages(store, replace(flt, current_only=False)), rule, now)
    chosen = decision.archive
    if not dry_run:
        items = [(item.memory, item.reason) for item in chosen]
        written = {r.id: r for r in store.archive_memories(flt.namespace, items, ACTOR)}
        chosen = [replace(i, memory=written[i.memory.id]) for i in chosen
                  if i.memory.id in written]  # fmt: skip
    return ForgetReport(
        policy=rule.name, threshold=rule.threshold, dry_run=dry_run, at=now,
        examined=decision.examined, archived=tuple(chosen),
        pinned_kept=decision.pinned_kept, changed=len(decision.archive) - len(chosen),
    )  # fmt: skip


def _pages(store: Store, flt: MemoryFilter) -> Iterator[MemoryRecord]:
    """Every memory the filter admits (expired and archived ones too: ``decide`` sorts
    them), ``PAGE`` at a time, newest first."""
    offset = 0
    while True:
        page = store.list_memories(flt, PAGE, offset)
        yield from page
        if len(page) < PAGE:
            return
        offset += PAGE


def _by_retention(record: MemoryRecord, threshold: float, now: datetime) -> Forgotten | None:
    if expired(record, now):
        return None  # the ttl policy's
    value = memory_retention(record, now, ignore_pin=True)  # the caller spares pinned ones
    if value >= threshold:
        return None
    return Forgotten(record, value, retention_reason(record, value, threshold, now))


def retention_reason(record: MemoryRecord, value: float, threshold: float, now: datetime) -> str:
    """Why a memory is archived by retention: its retention against the threshold, when
    its curve restarted (last recall, or storing), and its strength."""
    ago = f"{days_between(last_recall(record), now):.1f} days ago"
    if record.last_accessed_at is None:
        since = f"never recalled, stored {_when(record.created_at)} ({ago})"
    else:
        times = "once" if record.access_count == 1 else f"{record.access_count} times"
        since = f"last recalled {_when(record.last_accessed_at)} ({ago}; recalled {times})"
    return (
        f"retention {value:.4f} below {threshold:g}: {since}, strength "
        f"{record.strength:.2f} days (R = exp(-t/S))"
    )


def ttl_reason(record: MemoryRecord, now: datetime) -> str:
    """Why a memory is archived by ttl: when its time to live ran out."""
    end = record.expires_at or now
    return f"time to live ran out at {_when(end)} ({days_between(end, now):.1f} days ago)"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
