"""The web inspector at ``/ui``: server-rendered pages over the signed-in key's tenant.

Every page is a thin client of one tenant's ``Memory``, exactly as the ``/v1`` routes are:
the API key (kept in an HttpOnly, SameSite=Strict cookie) names the tenant, and another
tenant's memory id answers like an unknown one. Changes are POST forms whose Origin (or
Referer) must be this server; errors render as a page with the message, never a traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from remem.api import ListRequest, SearchRequest, to_plain
from remem.engine import Memory
from remem.errors import (
    AuthError,
    ConfigError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    RememError,
    kind_of,
)
from remem.models import MEMORY_KINDS, ApiKey, MemoryEvent, MemoryRecord, SearchResults
from remem.retrieval.recipes import CHANNELS, RECIPES
from remem.server.app import OPEN_TENANT, check_loopback_host, served

try:
    import jinja2
except ImportError as exc:  # pragma: no cover - jinja2 comes with the [server] extra
    raise ConfigError("the web inspector needs jinja2: pip install 'remem[server]'") from exc

log = logging.getLogger(__name__)
COOKIE = "remem_ui_key"
PAGE_SIZE = 50  # memories per page of the browser
SCOPE_SCAN = 2000  # most recent memories read to list the scopes that exist
TIMELINE_MAX = 2000  # turns shown of one session (its most recent ones)
MAX_FORM_FIELDS = 10
NOTICES = {  # ?done=... after a redirect: fixed texts, so nothing user-given is echoed
    "pinned": "Pinned. The change is in the memory's history.",
    "unpinned": "Unpinned. The change is in the memory's history.",
    "forgotten": "Forgotten: the memory is deleted (its history keeps when it changed, "
    "not what it said).",
    "signed-in": "Signed in.",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


# ------------------------------------------------------------------------------ the edge


class PageRoute(APIRoute):
    """A route whose failures render as pages: a missing or revoked key sends the visitor
    to sign in, a ``RememError`` shows its message with its status, anything else is
    logged and shown as an internal error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except AuthError:
                response = _to_sign_in(request)
            except HTTPException:  # the app's own answer (a body over its size limit)
                raise
            except Exception as exc:  # the edge: every other failure is a page
                # rendering it reads the visitor's key, so off the event loop
                response = await run_in_threadpool(error_page, request, _failure(exc))
            response.headers.update(SECURITY_HEADERS)
            return response

        return page


router = APIRouter(prefix="/ui", route_class=PageRoute, include_in_schema=False)


def _failure(exc: Exception) -> RememError:
    """What a failed page shows: a ``RememError`` as it is, invalid parameters as invalid
    input, anything else as an internal error (logged with its traceback)."""
    if isinstance(exc, RememError):
        if kind_of(exc).http_status >= 500:
            log.error("inspector request failed: %s", exc)
        return exc
    if isinstance(exc, RequestValidationError):
        return InvalidInputError(_problems(exc))
    log.exception("inspector page failed", exc_info=exc)
    return RememError("internal error; the server log has the details")


def _problems(exc: RequestValidationError) -> str:
    found = [f"{e.get('loc', ('?',))[-1]}: {e.get('msg', 'invalid')}" for e in exc.errors()[:5]]
    return "the page was asked with invalid parameters: " + "; ".join(found)


def _to_sign_in(request: Request) -> Response:
    """Off to the sign-in page; a cookie that no longer signs in is dropped."""
    stale = COOKIE in request.cookies
    target = _root(request) + "/signin" + ("?expired=1" if stale else "")
    response = RedirectResponse(target, 303)
    if stale:
        response.delete_cookie(COOKIE, path=_root(request))
    return response


def error_page(request: Request, exc: RememError) -> HTMLResponse:
    """A readable page for an error, with the status its kind has in every adapter."""
    kind = kind_of(exc)
    try:  # the page still shows who is signed in, when that can be known
        looker: Visitor | None = visitor(request)
    except RememError:
        looker = None
    return render(request, "error.html", looker, kind.http_status, kind=kind, message=str(exc))


# ------------------------------------------------------------------------- who is looking


@dataclass(frozen=True)
class Visitor:
    """Who is looking: their tenant's ``Memory``, and the key they signed in with (``None``
    on an open server, where everyone is tenant ``OPEN_TENANT``)."""

    memory: Memory
    tenant: str
    key: ApiKey | None


def visitor(request: Request) -> Visitor:
    """FastAPI dependency: the signed-in key's tenant (``AuthError`` sends to sign-in)."""
    state = served(request)
    secret = request.cookies.get(COOKIE)
    if secret:
        key = state.keys.authenticate(secret)
        return Visitor(state.tenant(key.tenant), key.tenant, key)
    if state.config.open:
        check_loopback_host(request)
        return Visitor(state.tenant(OPEN_TENANT), OPEN_TENANT, None)
    raise AuthError("sign in with an API key to use the inspector")


def same_origin(request: Request) -> None:
    """FastAPI dependency of every POST: refuse a form posted from another site (the
    cookie is SameSite=Strict as well; an open server has no cookie to rely on)."""
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    host = request.headers.get("host", "").lower()
    if not host or urlsplit(source).netloc.lower() != host:
        raise ForbiddenError(
            "this change was posted from another site (or without an Origin header) and was "
            "refused; open the inspector's own page and use its buttons"
        )


async def form(request: Request) -> dict[str, str]:
    """FastAPI dependency: the fields of an url-encoded form post."""
    sent = request.headers.get("content-type", "")
    if not sent.startswith("application/x-www-form-urlencoded"):
        raise InvalidInputError("post the form as application/x-www-form-urlencoded")
    try:
        text = (await request.body()).decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
    except ValueError as exc:  # UnicodeDecodeError included
        raise InvalidInputError(f"the form could not be read: {exc}") from None


Looker = Annotated[Visitor, Depends(visitor)]
Fields = Annotated[dict[str, str], Depends(form)]
CHANGES = [Depends(same_origin)]


# ------------------------------------------------------------------------------ templates


@functools.cache
def templates() -> jinja2.Environment:
    """The page templates, autoescaped (every value from a memory or a request is text)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("remem.server", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, number=number, as_json=as_json, shown=shown)
    return env


def when(moment: datetime | None, pattern: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A stored (naive UTC) time for a page; a dash for none."""
    return "—" if moment is None else moment.strftime(pattern)


def number(value: Any) -> str:
    """A score as a page shows it: four decimals, integers as they are."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return f"{value:.4f}"


def as_json(value: Any, indent: int | None = None) -> str:
    """A stored value (metadata, attributes, an event's field) as compact JSON text."""
    return json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=True, default=str)


def shown(value: Any) -> str:
    """Any field of a memory as text: times as ``when``, text as is, the rest as JSON."""
    if isinstance(value, datetime) or value is None:
        return when(value)
    if isinstance(value, str | int | float):
        return str(value)
    return as_json(to_plain(value))


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")) + router.prefix


def link_maker(root: str) -> Callable[..., str]:
    """``link("memories", memory_id, user_id="ana")``: a path under ``/ui`` with quoted
    segments and a query of the non-empty parameters."""

    def link(*parts: str, **params: Any) -> str:
        path = "/".join([root, *(quote(str(p), safe="") for p in parts)])
        query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
        return f"{path}?{query}" if query else path

    return link


def render(
    request: Request, template: str, looker: Visitor | None, status: int = 200, **values: Any
) -> HTMLResponse:
    """A page: the template with what every page shows (who is signed in, whether the
    server is open, the confirmation of the change just made)."""
    page = templates().get_template(template)
    html = page.render(
        visitor=looker,
        open=served(request).config.open,
        notice=NOTICES.get(request.query_params.get("done", "")),
        link=link_maker(_root(request)),
        **values,
    )
    return HTMLResponse(html, status, headers={"Cache-Control": "no-store"})


def _given(value: str | None) -> str | None:
    """A form's empty choice means 'any'."""
    return value or None


# ----------------------------------------------------------------------------- the scopes


@dataclass(frozen=True)
class SessionRef:
    """A session seen among the most recent memories, and when it last spoke."""

    user_id: str | None
    agent_id: str | None
    session_id: str
    last: datetime | None


@dataclass(frozen=True)
class Scopes:
    """The users, agents and sessions of a tenant, from its ``limit`` most recent
    memories (``partial`` when there were more)."""

    users: tuple[str, ...]
    agents: tuple[str, ...]
    sessions: tuple[SessionRef, ...]
    limit: int
    partial: bool

    def sessions_of(self, user_id: str | None, agent_id: str | None) -> list[SessionRef]:
        """The sessions of one user and/or agent (all of them for ``None``)."""
        return [s for s in self.sessions
                if user_id in (None, s.user_id) and agent_id in (None, s.agent_id)]  # fmt: skip


def scopes_of(memory: Memory, limit: int = SCOPE_SCAN) -> Scopes:
    """The scopes that exist, read from the most recent memories (newest session first)."""
    records = memory.list(limit=limit)
    sessions: dict[tuple[str | None, str | None, str], SessionRef] = {}
    for r in records:
        s = r.scope
        if s.session_id is not None and (s.user_id, s.agent_id, s.session_id) not in sessions:
            sessions[s.user_id, s.agent_id, s.session_id] = SessionRef(
                s.user_id, s.agent_id, s.session_id, r.occurred_at or r.created_at
            )
    return Scopes(
        users=_distinct(r.scope.user_id for r in records),
        agents=_distinct(r.scope.agent_id for r in records),
        sessions=tuple(sessions.values()),
        limit=limit,
        partial=len(records) == limit,
    )


def _distinct(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(sorted({v for v in values if v is not None}))


# ---------------------------------------------------------------------------- the pages


@router.get("")
@router.get("/")
def home(request: Request) -> Response:
    """The inspector starts at the memory browser."""
    return RedirectResponse(_root(request) + "/memories", 303)


@router.get("/static/inspector.css")
def stylesheet() -> Response:
    """The one stylesheet."""
    return Response(_css(), media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@functools.cache
def _css() -> str:
    return (resources.files("remem.server") / "static" / "inspector.css").read_text("utf-8")


@router.get("/signin")
def sign_in_page(request: Request, expired: bool = False) -> Response:
    """The sign-in form (on an open server it says that none is needed)."""
    looker = None
    if COOKIE in request.cookies:
        try:
            looker = visitor(request)
        except AuthError:
            expired = True
    message = "Your key is no longer valid; sign in again." if expired else None
    return render(request, "signin.html", looker, error=message)


@router.post("/signin", dependencies=CHANGES)
def sign_in(request: Request, fields: Fields) -> Response:
    """Check the key, keep it in an HttpOnly, SameSite=Strict cookie, open the browser."""
    secret = fields.get("key", "").strip()
    try:
        served(request).keys.authenticate(secret)
    except AuthError as exc:
        return render(request, "signin.html", None, 401, error=str(exc))
    response = RedirectResponse(_root(request) + "/memories?done=signed-in", 303)
    response.set_cookie(
        COOKIE, secret, path=_root(request), httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.post("/signout", dependencies=CHANGES)
def sign_out(request: Request) -> Response:
    """Forget the key in this browser."""
    response = RedirectResponse(_root(request) + "/signin", 303)
    response.delete_cookie(COOKIE, path=_root(request))
    return response


@router.get("/memories")
def browse(
    request: Request,
    looker: Looker,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    kind: str | None = None,
    offset: int = 0,
) -> Response:
    """A scope's memories, newest first, a page at a time, and the sessions to open."""
    user_id, agent_id, session_id, kind = map(_given, (user_id, agent_id, session_id, kind))
    page = ListRequest(
        user_id=user_id, agent_id=agent_id, session_id=session_id,
        kinds=[kind] if kind else None, limit=PAGE_SIZE, offset=offset,
    ).run(looker.memory)  # fmt: skip
    scopes = scopes_of(looker.memory)
    chosen = {"user_id": user_id, "agent_id": agent_id, "session_id": session_id, "kind": kind}
    return render(
        request, "memories.html", looker, page=page, scopes=scopes, chosen=chosen,
        kinds=MEMORY_KINDS, stats=looker.memory.stats(),
        sessions=scopes.sessions_of(user_id, agent_id),
    )  # fmt: skip


@dataclass(frozen=True)
class Turn:
    """One turn of a timeline: who said what, when, and whether a new day starts."""

    memory: MemoryRecord
    speaker: str
    role: str
    said: str
    new_day: bool


def timeline_of(records: list[MemoryRecord]) -> list[Turn]:
    """Turn memories (as ``list`` gives them, newest first) in conversation order."""
    turns: list[Turn] = []
    day = None
    for r in reversed(records):
        role = str(r.attributes.get("role", ""))
        speaker = str(r.attributes.get("speaker") or role or "?")
        said = r.text.removeprefix(f"{speaker}: ")
        moment = r.occurred_at or r.created_at
        turns.append(Turn(r, speaker, role, said, moment.date() != day))
        day = moment.date()
    return turns


@router.get("/timeline")
def timeline(
    request: Request,
    looker: Looker,
    session_id: str,
    user_id: str | None = None,
    agent_id: str | None = None,
) -> Response:
    """One session's turns in conversation order, with dates and speakers."""
    user_id, agent_id = _given(user_id), _given(agent_id)
    scope: dict[str, Any] = {"user_id": user_id, "agent_id": agent_id, "session_id": session_id}
    records = looker.memory.list(**scope, kinds="turn", limit=TIMELINE_MAX)
    summaries = looker.memory.list(**scope, kinds="summary", limit=1)
    return render(
        request, "timeline.html", looker, scope=scope, turns=timeline_of(records),
        summary=summaries[0] if summaries else None, cut=len(records) == TIMELINE_MAX,
    )  # fmt: skip


@router.get("/search")
def search(
    request: Request,
    looker: Looker,
    q: str = "",
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    kind: str | None = None,
    recipe: str | None = None,
    limit: int = 10,
) -> Response:
    """A search with its explanation: every hit's channels and per-step scores, the
    query analysis and each stage's milliseconds."""
    user_id, agent_id, session_id, kind, recipe = map(
        _given, (user_id, agent_id, session_id, kind, recipe)
    )
    results = None
    if q.strip():
        results = SearchRequest(
            query=q, user_id=user_id, agent_id=agent_id, session_id=session_id,
            kinds=[kind] if kind else None, recipe=recipe, limit=limit, explain=True,
        ).run(looker.memory)  # fmt: skip
    chosen = {"user_id": user_id, "agent_id": agent_id, "session_id": session_id,
              "kind": kind, "recipe": recipe, "limit": limit}  # fmt: skip
    return render(
        request, "search.html", looker, q=q, chosen=chosen, results=results,
        scopes=scopes_of(looker.memory), kinds=MEMORY_KINDS, recipes=RECIPES,
        channels=CHANNELS, **explained(results),
    )  # fmt: skip


def explained(results: SearchResults | None) -> dict[str, Any]:
    """The explanation split for the page: the analysis, and the timings with the
    slowest stage (a scale for the bars)."""
    info = dict(results.explain or {}) if results is not None else {}
    timings: Mapping[str, float] = info.pop("timings_ms", {})
    return {"analysis": info, "timings": timings, "slowest": max(timings.values(), default=0)}


@dataclass(frozen=True)
class Change:
    """One field an event changed."""

    field: str
    before: Any
    after: Any


def changes_of(event: MemoryEvent) -> list[Change]:
    """The fields an UPDATE or SUPERSEDE changed (an ADD or DELETE shows the whole memory)."""
    if event.before is None or event.after is None:
        return []
    before, after = event.before, event.after
    names = sorted(set(before) | set(after))
    return [Change(n, before.get(n), after.get(n)) for n in names
            if before.get(n) != after.get(n) and n != "updated_at"]  # fmt: skip


@router.get("/memories/{memory_id}")
def memory_page(request: Request, looker: Looker, memory_id: str) -> Response:
    """A memory's fields, decay and supersession, and its history; a forgotten memory
    shows its history alone."""
    try:
        record: MemoryRecord | None = looker.memory.get(memory_id)
    except NotFoundError as missing:
        try:
            events = looker.memory.history(memory_id)
        except NotFoundError:
            raise missing from None
        record = None
    else:
        events = looker.memory.history(memory_id)
    fields = [(f.name, getattr(record, f.name)) for f in dataclasses.fields(MemoryRecord)
              if record is not None]  # fmt: skip
    return render(
        request, "memory.html", looker, memory_id=memory_id, record=record, fields=fields,
        events=[(e, changes_of(e)) for e in events],
    )  # fmt: skip


@router.post("/memories/{memory_id}/pin", dependencies=CHANGES)
def pin(request: Request, looker: Looker, memory_id: str) -> Response:
    """Mark a memory pinned (an audited update); back to its page."""
    return _set_pinned(request, looker, memory_id, True)


@router.post("/memories/{memory_id}/unpin", dependencies=CHANGES)
def unpin(request: Request, looker: Looker, memory_id: str) -> Response:
    """Unpin a memory; back to its page."""
    return _set_pinned(request, looker, memory_id, False)


def _set_pinned(request: Request, looker: Visitor, memory_id: str, pinned: bool) -> Response:
    reason = "pinned in the inspector" if pinned else "unpinned in the inspector"
    looker.memory.update(memory_id, pinned=pinned, reason=reason)
    done = "pinned" if pinned else "unpinned"
    return RedirectResponse(link_maker(_root(request))("memories", memory_id, done=done), 303)


@router.post("/memories/{memory_id}/forget", dependencies=CHANGES)
def forget(request: Request, looker: Looker, memory_id: str) -> Response:
    """Delete a memory; back to the browser at its scope."""
    scope = looker.memory.get(memory_id).scope
    looker.memory.delete(memory_id)
    target = link_maker(_root(request))(
        "memories", user_id=scope.user_id, agent_id=scope.agent_id,
        session_id=scope.session_id, done="forgotten",
    )  # fmt: skip
    return RedirectResponse(target, 303)


@router.get("/{rest:path}")
def unknown(request: Request, rest: str) -> Response:
    """Any other path under /ui: the not-found page."""
    raise NotFoundError(f"the inspector has no page /ui/{rest}; start at /ui/memories")
