"""Request body size limits, enforced before a handler reads the body."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _too_large(limit: int) -> str:
    return (
        f"the request body is over {limit:,} bytes; send less per request "
        "(split the messages, or import a large export in parts)"
    )


class BodyLimit:
    """ASGI middleware: refuse bodies over ``default`` bytes (``larger`` per path prefix)
    with 413: by the declared length at once, and as the bytes arrive for chunked bodies."""

    def __init__(self, app: ASGIApp, default: int, larger: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.larger = dict(larger)

    def limit(self, path: str) -> int:
        """The byte limit of a path."""
        for prefix, size in self.larger.items():
            if path.startswith(prefix):
                return size
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            body = {"error": {"code": "too_large", "message": _too_large(limit)}}
            await JSONResponse(body, 413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:  # raised inside the route: its handler answers 413
                raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, counted, send)
