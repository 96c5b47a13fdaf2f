"""Entity resolution for consolidation: one person is one entity.

A candidate goes through the same enrichment as a turn (``Memory._derived``), which finds
names by their shape and the names the scope already knows in any case. Two gaps remain
for derived memories, and this closes them: a candidate's declared people (attributes
``who`` and ``entities``, as an extractor gives them: names or ``{"name": ...}``) become
entity links, and a name the batch knows (declared by any candidate, or found in any) is
found in every candidate, even lower case or at the start of a sentence, where shape
alone does not count it ("Melanie likes pottery", "melanie paints"). Every key is
``entity_key``'s ("Melanie's" -> "melanie"), the one turns are linked with, so the
scope's entity table and graph hold one entity per person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from remem.annotations import ENTITIES
from remem.formation.derived import Candidate
from remem.formation.entities import entity_key, extract_entities
from remem.models import Scope
from remem.stores.base import NewMemory

if TYPE_CHECKING:
    from remem.engine import Memory

DECLARED = ("who", "entities")  # candidate attributes naming the people it is about


def declared_names(attributes: Mapping[str, Any]) -> list[str]:
    """The names a candidate's attributes declare (``who``, ``entities``: a name, a list
    of names, or of ``{"name": ...}``), with a non-empty key."""
    out: list[str] = []
    for field in DECLARED:
        value = attributes.get(field)
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        for v in values:
            name = v.get("name") if isinstance(v, Mapping) else v
            if isinstance(name, str) and entity_key(name):
                out.append(name.strip())
    return out


def resolved(
    memory: Memory, scope: Scope, candidates: Sequence[Candidate], now: datetime
) -> list[NewMemory]:
    """The candidates as memories ready to write (``Memory._derived``: enriched, embedded),
    with one entity list each, keyed like every other memory of the scope."""
    if not candidates:
        return []
    if not memory.config.enrich.entities:
        return memory._derived(scope, candidates, now)
    declared = [declared_names(c.attributes) for c in candidates]
    # enrichment's entities are kept: a candidate's own ``entities`` would replace them
    plain = [replace(c, attributes={k: v for k, v in c.attributes.items() if k != ENTITIES})
             for c in candidates]  # fmt: skip
    drafts = memory._derived(scope, plain, now)
    found = [_entities(d.record.attributes) for d in drafts]
    keys = sorted({entity_key(n) for names in declared for n in names})
    stored = memory.store.entity_kinds(scope, keys) if keys else {}
    known: dict[str, str] = {}
    for items in found:
        known.update((e["key"], e["kind"]) for e in items if e["key"] not in known)
    for key in keys:
        known.setdefault(key, stored.get(key, "name"))
    out = []
    for draft, mine, names, candidate in zip(drafts, found, declared, candidates, strict=True):
        merged = {e["key"]: e for e in mine}
        for name in names:
            key = entity_key(name)
            merged.setdefault(key, {"key": key, "name": name, "kind": known[key]})
        for mention in extract_entities(candidate.text, known):
            kind = known.get(mention.key, mention.kind)
            merged.setdefault(mention.key, {"key": mention.key, "name": mention.name, "kind": kind})
        record = draft.record
        attributes = {**record.attributes, ENTITIES: list(merged.values())}
        if not merged:
            attributes.pop(ENTITIES)
        out.append(replace(draft, record=replace(record, attributes=attributes)))
    return out


def _entities(attributes: Mapping[str, Any]) -> list[dict[str, str]]:
    """The well-formed entity entries enrichment found (``{"key", "name", "kind"}``)."""
    items = attributes.get(ENTITIES)
    if not isinstance(items, list):
        return []
    return [
        {
            "key": e["key"],
            "name": str(e.get("name") or e["key"]),
            "kind": str(e.get("kind") or "name"),
        }
        for e in items
        if isinstance(e, Mapping) and isinstance(e.get("key"), str) and e["key"]
    ]
