"""The REST application: one shared ``Memory``, a tenant's view of it per request.

Every route under ``/v1`` gets the caller's ``Memory`` from ``tenant_memory``: the API key
names a tenant, and that tenant's view (``Memory.tenant``) reads and writes only its
namespace inside the store. Errors are JSON ``{"error": {"code", "message"}}`` with the
status from ``remem.errors.ERRORS``.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from remem import __version__
from remem.engine import Memory
from remem.errors import AuthError, ForbiddenError, RememError, kind_of
from remem.keys import KeyRing
from remem.models import ApiKey
from remem.server.limits import BodyLimit

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20  # a JSON request body
MAX_IMPORT_BYTES = 64 << 20  # an export file posted to /v1/import
OPEN_TENANT = "default"


@dataclass
class ServerConfig:
    """How the server runs: body limits, and whether requests without a key are let in
    (only when it was started with no keys on a loopback address)."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_import_bytes: int = MAX_IMPORT_BYTES
    open: bool = False


@dataclass
class Served:
    """What every request needs: the shared memory, its keys, and tenant views."""

    memory: Memory
    config: ServerConfig
    keys: KeyRing
    views: dict[str, Memory] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def caller(self, request: Request) -> ApiKey | None:
        """The request's live key; ``None`` for a keyless request to an open server."""
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if not header and self.config.open:
            check_loopback_host(request)
            return None
        if scheme.lower() != "bearer":
            raise AuthError(
                "send the API key as 'Authorization: Bearer <key>' "
                "(create one with `remem keys create --tenant NAME`)"
            )
        return self.keys.authenticate(secret.strip())

    def tenant(self, name: str) -> Memory:
        """The view of the shared memory confined to one tenant (made once, then kept)."""
        with self.lock:
            view = self.views.get(name)
            if view is None:
                view = self.views[name] = self.memory.tenant(name)
            return view


def check_loopback_host(request: Request) -> None:
    """An open server answers only to a loopback host name: a web page elsewhere that
    rebinds its own name to 127.0.0.1 must not read or change this memory."""
    host = urlsplit("//" + request.headers.get("host", "")).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost" or host.endswith(".localhost")
    if not loopback:
        raise ForbiddenError(
            "this server runs open (no API keys), so it answers only at a loopback address "
            "such as http://127.0.0.1; create a key to serve it elsewhere"
        )


def served(request: Request) -> Served:
    """The server's shared state."""
    state: Served = request.app.state.served
    return state


def tenant_memory(request: Request) -> Memory:
    """FastAPI dependency: the caller's tenant's ``Memory`` (authenticates the key)."""
    state = served(request)
    key = state.caller(request)
    return state.tenant(OPEN_TENANT if key is None else key.tenant)


def admin_key(request: Request) -> ApiKey | None:
    """FastAPI dependency: the caller, who must hold an admin key (or use an open server)."""
    key = served(request).caller(request)
    if key is not None and not key.admin:
        raise ForbiddenError("managing keys needs an admin key (`remem keys create --admin`)")
    return key


def error_body(code: str, message: str, **more: Any) -> dict[str, Any]:
    """The JSON every error answers with."""
    return {"error": {"code": code, "message": message, **more}}


async def _remem_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RememError)
    kind = kind_of(exc)
    if kind.http_status >= 500:
        log.error("request failed: %s", exc)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthError) else None
    return JSONResponse(error_body(kind.code, str(exc)), kind.http_status, headers=headers)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
        for e in exc.errors()[:10]
    ]
    message = "the request does not match the API (see /openapi.json): " + "; ".join(problems)
    if "json" not in request.headers.get("content-type", "") and request.method != "GET":
        message = f"send the body as JSON with 'Content-Type: application/json'; {message}"
    return JSONResponse(error_body("invalid_input", message), 422)


UNREADABLE = (
    "the request body could not be read as JSON; send a UTF-8 JSON object with "
    "'Content-Type: application/json'"
)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    codes = {400: "invalid_input", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    code = codes.get(exc.status_code, "http_error")
    message = UNREADABLE if exc.status_code == 400 else str(exc.detail)
    return JSONResponse(error_body(code, message), exc.status_code, headers=exc.headers)


async def _internal_error(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error", exc_info=exc)
    message = "internal error; the server log has the details"
    return JSONResponse(error_body("internal", message), 500)


def create_app(memory: Memory, config: ServerConfig | None = None) -> FastAPI:
    """The REST application over ``memory`` (its store's keys decide who gets in)."""
    from remem.compat.mem0_routes import mem0_router
    from remem.server.routes import ask_router, no_ask_router, router
    from remem.server.ui import router as ui_router

    config = config or ServerConfig()
    app = FastAPI(
        title="remem",
        version=__version__,
        description="Long-term memory for LLM agents. Authenticate with "
        "'Authorization: Bearer <key>'; every key is confined to its tenant.",
    )
    app.state.served = Served(memory, config, KeyRing(memory.store))
    app.add_exception_handler(RememError, _remem_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(
        BodyLimit, default=config.max_body_bytes, larger={"/v1/import": config.max_import_bytes}
    )
    app.include_router(router)
    # POST /v1/ask is served (and documented) only where an LLM can answer it
    app.include_router(ask_router if memory.llm is not None else no_ask_router)
    app.include_router(mem0_router(tenant_memory), prefix="/mem0")
    app.include_router(ui_router)
    return app
