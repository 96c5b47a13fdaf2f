"""Many tenants on one store and one model: ``Memory.tenant`` shares everything but data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from remem import AsyncMemory, Memory, NotFoundError, StoreError
from remem.embedders.base import Embedder


def test_tenants_share_the_store_model_and_indexes_not_the_data(
    tmp_path: Path, embedder: Embedder
) -> None:
    root = Memory(tmp_path / "m.db", embedder=embedder)
    a, b = root.tenant("acme"), root.tenant("globex")
    assert a.store is b.store is root.store and a.embedder is b.embedder is root.embedder
    assert a.index is b.index is root.index
    (mine,) = a.add("Our launch is on Friday in Lisbon", user_id="ana").memories
    b.add("Our launch is on Monday in Oslo", user_id="ana")
    assert [h.text for h in a.search("launch", user_id="ana")] == [mine.text]
    assert "Oslo" in b.search("launch", user_id="ana")[0].text
    assert root.search("launch", user_id="ana").hits == ()  # root's own namespace
    with pytest.raises(NotFoundError):  # another tenant's id answers like an unknown one
        b.get(mine.id)
    with pytest.raises(NotFoundError):
        b.delete(mine.id)
    assert a.get(mine.id) == mine
    assert (a.stats().memories, b.stats().memories) == (1, 1)
    root.close()


def test_closing_a_tenant_keeps_the_store_open_closing_the_root_closes_it(
    tmp_path: Path, embedder: Embedder
) -> None:
    root = Memory(tmp_path / "m.db", embedder=embedder)
    a = root.tenant("acme")
    a.add("hello", user_id="ana")
    a.close()
    with root.tenant("acme") as again:
        assert again.stats().memories == 1
    root.close()
    with pytest.raises(StoreError, match="closed"):
        a.stats()


def test_a_tenant_name_is_checked_like_a_namespace(tmp_path: Path, embedder: Embedder) -> None:
    with Memory(tmp_path / "m.db", embedder=embedder) as root:
        for bad in ("", "a\x00b", "n" * 300, 7):
            with pytest.raises(Exception) as info:
                root.tenant(bad)  # type: ignore[arg-type]
            assert "namespace" in str(info.value)


def test_async_tenants(tmp_path: Path, embedder: Embedder) -> None:
    async def main() -> None:
        async with AsyncMemory(tmp_path / "m.db", embedder=embedder) as root:
            a, b = root.tenant("acme"), root.tenant("globex")
            await asyncio.gather(a.add("jazz on Friday", user_id="u"),
                                 b.add("jazz on Sunday", user_id="u"))  # fmt: skip
            found = await asyncio.gather(a.search("jazz", user_id="u"),
                                         b.search("jazz", user_id="u"))  # fmt: skip
            assert ["Friday" in r[0].text for r in found] == [True, False]

    asyncio.run(main())


def test_another_tenants_writes_never_move_a_tenants_scores(
    tmp_path: Path, embedder: Embedder
) -> None:
    with Memory(tmp_path / "m.db", embedder=embedder) as root:
        a, b = root.tenant("acme"), root.tenant("globex")
        a.add([{"content": "the jazz trio plays on Friday"}, {"content": "lunch at noon"}],
              user_id="u", session_id="s")  # fmt: skip

        def seen() -> list[tuple[str, float, dict[str, float]]]:
            hits = a.search("jazz trio Friday", user_id="u", explain=True)
            return [(h.memory.id, h.score, h.scores) for h in hits]

        before = seen()
        b.add([{"content": f"jazz jazz trio number {i} on Friday"} for i in range(30)],
              user_id="u", session_id="s")  # fmt: skip
        assert seen() == before


def test_a_filter_kept_by_one_tenant_never_serves_another(
    tmp_path: Path, embedder: Embedder
) -> None:
    """The checked filters a ``Memory`` keeps (per namespace) are not handed to the views
    made from it, before or after it searched."""
    root = Memory(tmp_path / "m.db", embedder=embedder)
    root.add("Our launch is on Friday in Lisbon", user_id="ana")
    assert "Lisbon" in root.search("launch", user_id="ana")[0].text  # keeps ana's filter
    view = root.tenant("acme")
    view.add("Our launch is on Monday in Oslo", user_id="ana")
    assert [h.text for h in view.search("launch", user_id="ana")] == [
        "user: Our launch is on Monday in Oslo"
    ]
    assert "Lisbon" in root.search("launch", user_id="ana")[0].text
    root.close()
