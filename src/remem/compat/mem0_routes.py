"""REST routes shaped like mem0's server (``server/main.py``), over a tenant's ``Memory``.

The server mounts ``mem0_router(dependency)`` under a prefix (``/mem0``); ``dependency``
authenticates the request and returns the tenant's ``remem.Memory``. Paths, methods,
bodies and results follow mem0's server; errors are remem's ``RememError``, left to the
server's exception handler (unknown ids are 404, bad input 400). Needs the ``[server]`` extra.
"""

# no ``from __future__ import annotations``: FastAPI reads each handler's annotations, and
# they name the dependency, a local of ``mem0_router``
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from remem.compat.mem0 import Memory as Mem0Memory
from remem.engine import Memory
from remem.errors import NotFoundError

MAX_TOP_K = 10_000


class Message(BaseModel):
    """One message of a conversation, as mem0's server takes it."""

    role: str = Field(..., description="Who said it: user, assistant, system or tool.")
    content: str = Field(..., description="What was said.")
    name: str | None = Field(None, description="The speaker's name (mem0's actor_id).")


class MemoryCreate(BaseModel):
    """Body of ``POST /memories`` (mem0's ``MemoryCreate``)."""

    messages: list[Message] = Field(..., description="Messages to store.")
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] | None = None
    expiration_date: str | None = Field(None, description="Refused: set it with PUT.")
    infer: bool | None = Field(None, description="Accepted; remem calls no LLM either way.")
    memory_type: str | None = Field(None, description="Refused: needs an LLM.")
    prompt: str | None = Field(None, description="Refused: needs an LLM.")


class MemoryUpdate(BaseModel):
    """Body of ``PUT /memories/{memory_id}`` (mem0's ``MemoryUpdate``)."""

    text: str | None = Field(None, description="The memory's new text.")
    metadata: dict[str, Any] | None = Field(None, description="Merged into its metadata.")
    expiration_date: str | None = Field(None, description="YYYY-MM-DD, or null to clear.")


class SearchRequest(BaseModel):
    """Body of ``POST /search`` (mem0's ``SearchRequest``)."""

    query: str = Field(..., description="What to look for.")
    user_id: str | None = None
    run_id: str | None = None
    agent_id: str | None = None
    filters: dict[str, Any] | None = Field(None, description="Scope and metadata equalities.")
    top_k: int | None = Field(None, description="Maximum number of results (default 20).")
    threshold: float | None = Field(None, description="Minimum score of a result.")
    explain: bool | None = Field(None, description="Add per-channel scores to each result.")
    show_expired: bool | None = Field(None, description="Refused when true.")


def mem0_router(memory_dependency: Callable[..., Memory]) -> APIRouter:
    """mem0's REST routes, each on the ``Memory`` that ``memory_dependency`` returns."""
    router = APIRouter(tags=["mem0"])
    _memory_routes(router, memory_dependency)
    _scope_routes(router, memory_dependency)
    return router


def _memory_routes(router: APIRouter, tenant: Callable[..., Memory]) -> None:
    """Routes on one memory: create, read, update, history, delete."""

    @router.post("/memories", summary="Create memories")
    def add_memory(
        body: MemoryCreate, memory: Annotated[Memory, Depends(tenant)]
    ) -> dict[str, Any]:
        return Mem0Memory(memory).add(
            [m.model_dump(exclude_none=True) for m in body.messages], user_id=body.user_id,
            agent_id=body.agent_id, run_id=body.run_id, metadata=body.metadata,
            expiration_date=body.expiration_date,
            infer=True if body.infer is None else body.infer,
            memory_type=body.memory_type, prompt=body.prompt,
        )  # fmt: skip

    @router.get("/memories/{memory_id}", summary="Get a memory")
    def get_memory(memory_id: str, memory: Annotated[Memory, Depends(tenant)]) -> dict[str, Any]:
        found = Mem0Memory(memory).get(memory_id)
        if found is None:
            raise _unknown(memory_id)
        return found

    @router.put("/memories/{memory_id}", summary="Update a memory")
    def update_memory(
        memory_id: str, body: MemoryUpdate, memory: Annotated[Memory, Depends(tenant)]
    ) -> dict[str, Any]:
        given = body.model_fields_set  # an explicit null clears the expiration date
        changes: dict[str, Any] = {"text": body.text, "metadata": body.metadata}
        if "expiration_date" in given:
            changes["expiration_date"] = body.expiration_date
        return Mem0Memory(memory).update(memory_id, **changes)

    @router.get("/memories/{memory_id}/history", summary="Get memory history")
    def memory_history(
        memory_id: str, memory: Annotated[Memory, Depends(tenant)]
    ) -> list[dict[str, Any]]:
        rows = Mem0Memory(memory).history(memory_id)
        if not rows:
            raise _unknown(memory_id)
        return rows

    @router.delete("/memories/{memory_id}", summary="Delete a memory")
    def delete_memory(memory_id: str, memory: Annotated[Memory, Depends(tenant)]) -> dict[str, Any]:
        Mem0Memory(memory).delete(memory_id)
        return {"message": "Memory deleted successfully"}


def _scope_routes(router: APIRouter, tenant: Callable[..., Memory]) -> None:
    """Routes on a scope: list, search, delete all, reset."""

    @router.get("/memories", summary="Get memories")
    def get_all_memories(
        memory: Annotated[Memory, Depends(tenant)],
        user_id: str | None = None,
        run_id: str | None = None,
        agent_id: str | None = None,
        top_k: Annotated[int | None, Query(ge=1, le=MAX_TOP_K)] = None,
        show_expired: bool = False,
    ) -> dict[str, Any]:
        return Mem0Memory(memory).get_all(
            user_id=user_id, agent_id=agent_id, run_id=run_id, top_k=top_k,
            show_expired=show_expired,
        )  # fmt: skip

    @router.post("/search", summary="Search memories")
    def search_memories(
        body: SearchRequest, memory: Annotated[Memory, Depends(tenant)]
    ) -> dict[str, Any]:
        return Mem0Memory(memory).search(
            body.query, user_id=body.user_id, agent_id=body.agent_id, run_id=body.run_id,
            filters=body.filters, top_k=body.top_k, threshold=body.threshold,
            explain=bool(body.explain), show_expired=bool(body.show_expired),
        )  # fmt: skip

    @router.delete("/memories", summary="Delete all memories of a scope")
    def delete_all_memories(
        memory: Annotated[Memory, Depends(tenant)],
        user_id: str | None = None,
        run_id: str | None = None,
        agent_id: str | None = None,
    ) -> dict[str, Any]:
        Mem0Memory(memory).delete_all(user_id=user_id, agent_id=agent_id, run_id=run_id)
        return {"message": "All relevant memories deleted"}

    @router.post("/reset", summary="Delete all memories of a scope (a scope is required)")
    def reset_memory(
        memory: Annotated[Memory, Depends(tenant)],
        user_id: str | None = None,
        run_id: str | None = None,
        agent_id: str | None = None,
    ) -> dict[str, Any]:
        Mem0Memory(memory).reset(user_id=user_id, agent_id=agent_id, run_id=run_id)
        return {"message": "All memories reset"}


def _unknown(memory_id: str) -> NotFoundError:
    return NotFoundError(
        f"no memory {memory_id!r} in this namespace; find ids with GET /memories or POST /search"
    )
