"""Derivation rules every backend applies when a memory is written or removed.

A memory's text and attributes are the source of truth; a store keeps, per user/agent
scope, the entity table (names and key phrases its memories link to) and the term counts
of its turns (for key-phrase surprisal at ingest). Nothing derived crosses a scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remem.annotations import EntityLink, entity_links, words

DOCS = ""  # the term-count row holding how many turns the scope has


def term_deltas(kind: str, text: str, sign: int) -> list[tuple[str, int]]:
    """Changes to the scope's term counts when a memory is added (+1) or removed (-1):
    a turn counts once, and once per distinct word of its text; other kinds not at all."""
    if kind != "turn":
        return []
    return [(DOCS, sign), *((w, sign) for w in sorted(set(words(text))))]


def entity_rows(attributes: Mapping[str, Any]) -> list[EntityLink]:
    """The entity-table rows a memory needs (created when missing, never removed: other
    memories of the scope may name them)."""
    return entity_links(attributes)
