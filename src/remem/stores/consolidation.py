"""What consolidation asks of a store write, backend-neutral: the state a retired memory
takes, the checks that make concurrent consolidation safe, and their errors.

A consolidation batch (``WriteBatch.retire``, ``notes`` and memories carrying a
``TEXT_HASH``) was planned on a view of the store that another writer may have changed
before it commits. Each backend re-checks, inside the batch's write transaction (writes
are serialised in both), that what the plan relied on still holds: every memory it
retires or notes is still current, and no current memory of the same user/agent already
states a fact it adds. Otherwise the whole batch fails with ``ConflictError`` and the
caller plans again on the new state (``remem.evolution.consolidate.consolidate_and_write``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from remem.errors import ConflictError, InvalidInputError
from remem.formation.derived import DERIVED_KINDS
from remem.models import MemoryRecord
from remem.stores.base import NewMemory, Retire, WriteBatch
from remem.util import utcnow

TEXT_HASH = "text_hash"  # the attribute holding a derived memory's normalised-text hash
HASHED_KINDS = DERIVED_KINDS  # the kinds the text-hash check compares with
Owner = tuple[str, str, str]  # (namespace, user_id, agent_id), '' for unset
# (memory, action, before, after) entries, one reason and actor: the stores' ``_log_all``
LogAll = Callable[
    [Any, Sequence[tuple[MemoryRecord, str, MemoryRecord | None, MemoryRecord | None]], str, str],
    None,
]


class Transaction(Protocol):
    """What ``apply`` needs of a backend's open write transaction: its SQL, no rules."""

    def memories(self, namespace: str, ids: Sequence[str]) -> dict[str, MemoryRecord]:
        """Memories by id (locked until commit where the backend can)."""

    def current_hashes(self, owner: Owner, wanted: list[str]) -> list[tuple[str, str]]:
        """(hash, id) of the owner's current derived memories carrying one of ``wanted``."""

    def mark_retired(self, after: MemoryRecord, revision: int) -> None:
        """Store a retired memory's ``valid_to``, ``superseded_by``, ``expired_at``."""


def apply(tx: Transaction, batch: WriteBatch, revision: int, log: LogAll, conn: Any) -> None:
    """Check the batch's hashes, log its notes and retire what it ends, after its
    memories were inserted; any ``ConflictError`` rolls the whole batch back."""
    if not needed(batch):
        return
    written = {n.record.id for n in batch.memories}
    retiring = {r.memory_id for r in batch.retire}
    for owner, wanted in hashes(batch.memories).items():
        found = tx.current_hashes(owner, list(wanted))
        check_no_duplicate(owner, found, wanted, written | retiring)
    for note in batch.notes:
        stored = tx.memories(note.namespace, [note.memory_id])
        record = check_current(stored, note.memory_id, note.namespace, "note")
        log(conn, [(record, note.action, None, None)], note.reason, batch.actor)
    now = utcnow()
    for retire in batch.retire:
        stored = tx.memories(retire.namespace, [retire.memory_id])
        before = check_current(stored, retire.memory_id, retire.namespace, "retire")
        successors = [retire.superseded_by] if retire.superseded_by else []
        check_retire(retire, written, set(tx.memories(retire.namespace, successors)))
        after = retired(before, retire, now)
        tx.mark_retired(after, revision)
        log(conn, [(after, retire.action, before, after)], retire.reason, batch.actor)


def needed(batch: WriteBatch) -> bool:
    """Whether a batch carries anything for the consolidation step of ``write``."""
    return bool(batch.retire or batch.notes or hashes(batch.memories))


def hashes(memories: Sequence[NewMemory]) -> dict[Owner, dict[str, str]]:
    """The text hashes of new derived memories, per owner: hash -> the new memory's id."""
    out: dict[Owner, dict[str, str]] = {}
    for new in memories:
        record = new.record
        value = record.attributes.get(TEXT_HASH)
        if isinstance(value, str) and value and record.kind in HASHED_KINDS:
            s = record.scope
            out.setdefault((s.namespace, s.user_id or "", s.agent_id or ""), {})[value] = record.id
    return out


def check_no_duplicate(
    owner: Owner,
    found: Sequence[tuple[str, str]],
    wanted: Mapping[str, str],
    exempt: set[str],
) -> None:
    """``found`` (hash, id of a current memory) must hold none of the ``wanted`` hashes,
    except for memories in ``exempt`` (written or retired by this batch)."""
    for value, memory_id in found:
        if memory_id not in exempt and value in wanted:
            raise ConflictError(
                f"memory {memory_id!r} of user {owner[1]!r} already states what new memory "
                f"{wanted[value]!r} would (another writer consolidated it first); nothing "
                "was written: consolidate the candidates again"
            )


def check_current(
    stored: Mapping[str, MemoryRecord], memory_id: str, namespace: str, what: str
) -> MemoryRecord:
    """The stored memory a retire or note names, if it is still current; else the
    ``ConflictError`` that fails the batch."""
    record = stored.get(memory_id)
    if record is None:
        raise ConflictError(
            f"memory {memory_id!r} to {what} is not in namespace {namespace!r} any more "
            "(deleted meanwhile?); nothing was written: consolidate the candidates again"
        )
    if record.superseded_by is not None or record.expired_at is not None:
        by = f"superseded by {record.superseded_by!r}" if record.superseded_by else "ended"
        raise ConflictError(
            f"memory {memory_id!r} to {what} is no longer current ({by}: another writer "
            "changed it first); nothing was written: consolidate the candidates again"
        )
    return record


def check_retire(retire: Retire, written: set[str], existing: set[str]) -> None:
    """A retire must name a successor the store holds (or the batch writes), not itself."""
    successor = retire.superseded_by
    if successor is None:
        return
    if successor == retire.memory_id:
        raise InvalidInputError(f"memory {retire.memory_id!r} cannot supersede itself")
    if successor not in written and successor not in existing:
        raise InvalidInputError(
            f"memory {retire.memory_id!r} would be superseded by {successor!r}, which is not "
            "stored; write the successor in the same batch"
        )


def retired(before: MemoryRecord, retire: Retire, now: datetime) -> MemoryRecord:
    """The state a retired memory takes: valid until ``retire.at``, superseded by its
    successor, or, invalidated with none, ended (``expired_at``) now. Nothing else of
    it changes: it stays readable as it was, with ``as_of`` and in history mode."""
    return replace(
        before,
        valid_to=retire.at,
        superseded_by=retire.superseded_by,
        expired_at=now if retire.superseded_by is None else before.expired_at,
        updated_at=now,
    )
