"""The ``/v1`` routes: thin calls from a tenant's ``Memory`` to JSON.

Handlers are plain functions (FastAPI runs them in its thread pool; ``Memory`` is
thread-safe). Each builds one of ``remem.api``'s requests and answers ``to_plain`` of the
result, so a route means what the library call and the CLI command mean.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from remem import __version__
from remem.api import (
    AddRequest,
    AskRequest,
    ContextRequest,
    ForgetRequest,
    KeyRequest,
    ListRequest,
    SearchRequest,
    UpdateRequest,
    to_plain,
)
from remem.engine import Memory
from remem.errors import InvalidInputError, NotFoundError, RememError
from remem.keys import KeyRing
from remem.models import ApiKey
from remem.server.app import admin_key, served, tenant_memory

router = APIRouter(prefix="/v1")
Tenant = Annotated[Memory, Depends(tenant_memory)]
Admin = Annotated[ApiKey | None, Depends(admin_key)]
Plain = dict[str, Any]


@router.get("/health", tags=["server"])
def health(request: Request) -> Plain:
    """Liveness and the store's schema version (no key needed)."""
    store = served(request).memory.store
    return {"status": "ok", "version": __version__,
            "schema_version": getattr(store, "schema_version", None)}  # fmt: skip


@router.post("/memories", status_code=201, tags=["memories"])
def add(body: AddRequest, memory: Tenant) -> Plain:
    """Log messages verbatim and derive a memory from each (re-sent message ids are
    reported in ``duplicate_ids`` and not stored twice)."""
    result: Plain = to_plain(body.run(memory))
    return result


@router.post("/search", tags=["memories"])
def search(body: SearchRequest, memory: Tenant) -> Plain:
    """The memories that best answer ``query``, best first, with per-channel scores
    (``explain: true`` adds the query analysis and each step's milliseconds)."""
    result: Plain = to_plain(body.run(memory))
    return result


@router.post("/forget", tags=["memories"])
def forget(body: ForgetRequest, memory: Tenant) -> Plain:
    """Archive (never delete) what a forgetting policy picks in a scope: ``retention``
    below ``threshold``, or ``ttl`` past ``expires_at``; each archived memory's history
    says why. ``dry_run: true`` lists what would go and writes nothing."""
    result: Plain = to_plain(body.run(memory))
    return result


@router.post("/context", tags=["memories"])
def context(body: ContextRequest, memory: Tenant) -> Plain:
    """The best memories for ``query`` inside ``budget_tokens``, laid out for a prompt."""
    result: Plain = to_plain(body.run(memory))
    return result


# served only when the memory has an LLM (``create_app``): without one the route does
# not exist, and the OpenAPI document says what this server can do
ask_router = APIRouter(prefix="/v1")
no_ask_router = APIRouter(prefix="/v1")


@no_ask_router.post("/ask", include_in_schema=False)
def no_ask() -> Plain:
    """Where no LLM is configured: a clear 404 instead of a bare one."""
    raise NotFoundError(
        "POST /v1/ask needs an LLM and this server has none: start remem serve with "
        "REMEM_LLM_BASE_URL and REMEM_LLM_MODEL set (docs/llm.md)"
    )


@ask_router.post("/ask", tags=["memories"])
def ask(body: AskRequest, memory: Tenant) -> Plain:
    """An answer to ``question`` by the configured LLM from the memories that fit
    ``budget_tokens``, citing the memories (and their source messages) it used."""
    result: Plain = to_plain(body.run(memory))
    return result


def _metadata(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        raise InvalidInputError('metadata must be a JSON object, e.g. {"topic": "pets"}') from None
    if not isinstance(parsed, dict):
        raise InvalidInputError(f"metadata must be a JSON object, not {type(parsed).__name__}")
    return parsed


@router.get("/memories", tags=["memories"])
def list_memories(
    memory: Tenant,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    kind: Annotated[list[str] | None, Query()] = None,
    metadata: Annotated[str | None, Query(description="a JSON object to match")] = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 100,
    offset: int = 0,
    as_of: Annotated[str | None, Query(description="memories current at this time")] = None,
    mode: Annotated[str, Query(description="current, or history: every version")] = "current",
) -> Plain:
    """A page of memories, most recent first; ``next_offset`` is null on the last page."""
    request = ListRequest(
        user_id=user_id, agent_id=agent_id, session_id=session_id, kinds=kind,
        metadata=_metadata(metadata), since=since, until=until, limit=limit, offset=offset,
        as_of=as_of, mode=mode,
    )  # fmt: skip
    result: Plain = to_plain(request.run(memory))
    return result


@router.delete("/memories", tags=["memories"])
def delete_scope(
    memory: Tenant,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
) -> Plain:
    """Delete every memory and message of a scope (one of the ids is required)."""
    counts = memory.delete_all(user_id=user_id, agent_id=agent_id, session_id=session_id)
    return {"deleted": counts}


@router.get("/memories/{memory_id}", tags=["memories"])
def get(memory_id: str, memory: Tenant, as_of: str | None = None) -> Plain:
    """One memory in full (``as_of``: the version of its line current at that time)."""
    result: Plain = to_plain(memory.get(memory_id, as_of=as_of))
    return result


@router.patch("/memories/{memory_id}", tags=["memories"])
def update(memory_id: str, body: UpdateRequest, memory: Tenant) -> Plain:
    """Change text, metadata, pinned, expires_at or importance (the change is audited)."""
    result: Plain = to_plain(body.run(memory, memory_id))
    return result


@router.delete("/memories/{memory_id}", tags=["memories"])
def delete(memory_id: str, memory: Tenant) -> Plain:
    """Delete one memory (its source messages stay; its history keeps when it changed,
    not what it said)."""
    memory.delete(memory_id)
    return {"deleted": memory_id}


@router.get("/memories/{memory_id}/history", tags=["memories"])
def history(memory_id: str, memory: Tenant) -> list[Plain]:
    """Every change to a memory, oldest first."""
    result: list[Plain] = to_plain(memory.history(memory_id))
    return result


@router.get("/stats", tags=["memories"])
def stats(memory: Tenant) -> Plain:
    """Counts of messages, memories and events of the caller's tenant."""
    result: Plain = to_plain(memory.stats())
    result.pop("path", None)  # the server's file layout is not the caller's business
    return result


@router.get("/export", tags=["portability"], response_class=FileResponse)
def export(memory: Tenant) -> FileResponse:
    """The tenant's messages, memories and history as JSONL (``remem import`` reads it)."""
    folder = tempfile.TemporaryDirectory(prefix="remem-export-")
    path = Path(folder.name) / "export.jsonl"
    memory.export(path)
    return FileResponse(path, media_type="application/x-ndjson", filename="remem-export.jsonl",
                        background=BackgroundTask(folder.cleanup))  # fmt: skip


@router.post("/import", tags=["portability"])
async def import_(request: Request, memory: Tenant) -> Plain:
    """Load a JSONL export (the request body) into the tenant, all or nothing."""
    from starlette.concurrency import run_in_threadpool

    data = await request.body()
    with tempfile.TemporaryDirectory(prefix="remem-import-") as folder:
        path = Path(folder) / "import.jsonl"
        path.write_bytes(data)
        try:
            rows = await run_in_threadpool(memory.import_, path)
        except RememError as exc:  # name the body, not the server's temporary file
            raise type(exc)(str(exc).replace(str(path), "the request body")) from None
    return {"imported": rows}


# -------------------------------------------------------------------------------- keys


@router.get("/keys", tags=["keys"])
def list_keys(request: Request, _admin: Admin) -> list[Plain]:
    """Every API key (admin only); secrets are never shown again."""
    result: list[Plain] = to_plain(KeyRing(served(request).memory.store).list())
    return result


@router.post("/keys", status_code=201, tags=["keys"])
def create_key(request: Request, _admin: Admin, body: KeyRequest) -> Plain:
    """A new key for a tenant (admin only); ``key`` is shown in this answer only."""
    ring = KeyRing(served(request).memory.store)
    key, secret = ring.create(body.tenant, body.name, body.admin)
    return {**to_plain(key), "key": secret}


@router.delete("/keys/{key_id}", tags=["keys"])
def revoke_key(key_id: str, request: Request, _admin: Admin) -> Plain:
    """Revoke a key at once (admin only)."""
    result: Plain = to_plain(KeyRing(served(request).memory.store).revoke(key_id))
    return result
