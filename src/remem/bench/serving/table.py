"""The serving benches' reports as text: a column of names and a column of values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def format_rows(
    rows: Sequence[tuple[str, object]], examples: Mapping[str, Sequence[str]] | None = None
) -> str:
    """One ``name  value`` line per row, names padded to one width; then, per kind of
    problem in ``examples``, a line with a few of the ids or requests concerned."""
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines += [f"  e.g. {kind}: {', '.join(ids)}" for kind, ids in (examples or {}).items()]
    return "\n".join(lines)
