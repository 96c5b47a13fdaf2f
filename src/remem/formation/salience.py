"""The entity table as users see it: mentions, sessions and strength decayed over sessions.

Following SirLLM, a key phrase's weight fades as the conversation moves on unless it is
mentioned again: each mention counts its weight times ``decay`` per later session.
"""

from __future__ import annotations

from datetime import datetime

from remem.formation.keyphrases import decayed
from remem.index.live import LiveScope
from remem.models import Entity


def _session_order(index: LiveScope) -> dict[str, int]:
    """Conversation key -> its rank by first appearance (memories are in insertion order)."""
    order: dict[str, int] = {}
    for i, key in enumerate(index.sessions):
        if index.kinds[i] == "turn" and index.alive(i):
            order.setdefault(key, len(order))
    return order


def entity_table(index: LiveScope, decay: float) -> list[Entity]:
    """Every entity the index links to, strongest first."""
    order = _session_order(index)
    latest = len(order) - 1
    grouped: dict[int, list[tuple[int, float]]] = {}
    for row, entity, weight in index.mentions:
        grouped.setdefault(entity, []).append((row, weight))
    out = []
    for entity, links in grouped.items():
        row_info = [(index.ids[r], index.sessions[r], index.occurred[r], w) for r, w in links]
        sessions = {s for _, s, _, _ in row_info}
        strength = sum(decayed(w, latest - order.get(s, latest), decay) for _, s, _, w in row_info)
        times = [t for _, _, t, _ in row_info if isinstance(t, datetime)]
        e = index.entities[entity]
        out.append(Entity(
            key=e.key, name=e.name, kind=e.kind, mentions=len(links), sessions=len(sessions),
            strength=round(strength, 4), first_seen=min(times, default=None),
            last_seen=max(times, default=None), memory_ids=tuple(i for i, _, _, _ in row_info),
        ))  # fmt: skip
    out.sort(key=lambda e: (-e.strength, e.key))
    return out
