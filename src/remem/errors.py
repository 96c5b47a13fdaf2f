"""Errors raised by remem: one base class and a shallow tree.

    RememError
    ├── InvalidInputError      bad arguments: empty text, unknown role, bad scope or time
    │   └── MessageTooLargeError   a message over the configured size limit
    ├── NotFoundError          an unknown memory id (or one in another scope)
    ├── ConflictError          a client id reused for different content
    ├── StoreError             the storage backend failed
    │   └── CorruptStoreError  the file is not a remem database, or is damaged
    ├── EmbedderError          the embedder failed or is misconfigured
    ├── LLMError               the LLM endpoint failed, or its output stayed invalid
    ├── DataFormatError        a data file (import, benchmark) is not in the expected layout
    ├── ConfigError            invalid configuration or a missing optional extra
    ├── AuthError              a request without a valid API key (REST)
    └── ForbiddenError         a valid key asking for what its role may not do (REST)

Every message says what went wrong and what to do about it. ``ERRORS`` maps each class to
how the CLI, the REST server and MCP report it (``kind_of``).
"""

from __future__ import annotations

from dataclasses import dataclass


class RememError(Exception):
    """Base of every error remem raises."""


class InvalidInputError(RememError, ValueError):
    """An argument is invalid; the message says which and why."""


class MessageTooLargeError(InvalidInputError):
    """A message is larger than the configured limit."""


class NotFoundError(RememError, KeyError):
    """A memory or message id does not exist in the given scope."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ConflictError(RememError):
    """A client-given id was reused for different content."""


class StoreError(RememError):
    """The storage backend failed."""


class CorruptStoreError(StoreError):
    """The database file is not a remem database or is damaged."""


class EmbedderError(RememError):
    """The embedder failed or is misconfigured."""


class LLMError(RememError):
    """The LLM endpoint failed, or its answer stayed invalid after re-asking.

    ``reason`` says why in a few words, ``raw`` holds the model's last answer (if any) so
    the caller can record a failed job with both; nothing is written from it. ``transient``
    says the endpoint itself failed (timeouts, 429, 5xx): trying again later may work.
    """

    def __init__(
        self, message: str, *, reason: str = "", raw: str | None = None, transient: bool = False
    ) -> None:
        super().__init__(message)
        self.reason = reason or message
        self.raw = raw
        self.transient = transient


class DataFormatError(RememError):
    """A data file is not in the expected layout."""


class ConfigError(RememError):
    """The configuration is invalid or an optional extra is missing."""


class AuthError(RememError):
    """A request carried no API key, or one that is unknown or revoked."""


class ForbiddenError(RememError):
    """The API key is valid but may not do this (key management needs an admin key)."""


@dataclass(frozen=True)
class ErrorKind:
    """How every adapter reports one kind of error: a stable code for machines, the CLI's
    exit code, the HTTP status of the REST server and the JSON-RPC error code of MCP."""

    code: str
    exit_code: int
    http_status: int
    rpc_code: int


INVALID_PARAMS, INTERNAL = -32602, -32603  # JSON-RPC 2.0 error codes (MCP uses them)

ERRORS: dict[type[RememError], ErrorKind] = {
    RememError: ErrorKind("error", 1, 500, INTERNAL),
    InvalidInputError: ErrorKind("invalid_input", 2, 400, INVALID_PARAMS),
    MessageTooLargeError: ErrorKind("too_large", 2, 413, INVALID_PARAMS),
    NotFoundError: ErrorKind("not_found", 3, 404, INVALID_PARAMS),
    ConflictError: ErrorKind("conflict", 2, 409, INVALID_PARAMS),
    StoreError: ErrorKind("store_error", 4, 503, INTERNAL),
    CorruptStoreError: ErrorKind("corrupt_store", 4, 500, INTERNAL),
    EmbedderError: ErrorKind("embedder_error", 1, 502, INTERNAL),
    LLMError: ErrorKind("llm_error", 1, 502, INTERNAL),
    DataFormatError: ErrorKind("data_format", 2, 422, INVALID_PARAMS),
    ConfigError: ErrorKind("config_error", 2, 500, INTERNAL),
    AuthError: ErrorKind("unauthorized", 2, 401, INVALID_PARAMS),
    ForbiddenError: ErrorKind("forbidden", 2, 403, INVALID_PARAMS),
}
"""The one table mapping each error class to how the CLI, REST and MCP report it."""


def kind_of(error: RememError) -> ErrorKind:
    """The table's entry for an error: its class's, else its nearest base class's."""
    for cls in type(error).__mro__:
        if cls in ERRORS:
            return ERRORS[cls]
    return ERRORS[RememError]
