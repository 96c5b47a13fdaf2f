"""Errors raised by remem: one base class and a shallow tree.

    RememError
    ├── InvalidInputError      bad arguments: empty text, unknown role, bad scope or time
    │   └── MessageTooLargeError   a message over the configured size limit
    ├── NotFoundError          an unknown memory id (or one in another scope)
    ├── ConflictError          a client id reused for different content
    ├── StoreError             the storage backend failed
    │   └── CorruptStoreError  the file is not a remem database, or is damaged
    ├── EmbedderError          the embedder failed or is misconfigured
    ├── DataFormatError        a data file (import, benchmark) is not in the expected layout
    └── ConfigError            invalid configuration or a missing optional extra

Every message says what went wrong and what to do about it.
"""

from __future__ import annotations


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


class DataFormatError(RememError):
    """A data file is not in the expected layout."""


class ConfigError(RememError):
    """The configuration is invalid or an optional extra is missing."""
