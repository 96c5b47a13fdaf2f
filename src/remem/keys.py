"""API keys of the REST server: create, list, revoke, and authenticate a request's key.

A key is ``rk_`` and 43 random URL-safe characters (256 bits), shown once at creation; the
store keeps only its SHA-256 (a fast hash is enough for a random secret of that size).
Each key belongs to one tenant, the namespace every request made with it is confined to.
"""

from __future__ import annotations

import hashlib
import secrets
from uuid import uuid4

from remem.errors import AuthError
from remem.models import ApiKey
from remem.stores.base import Store
from remem.util import utcnow
from remem.validation import check_id, check_text

PREFIX = "rk_"
MAX_KEY_CHARS = 200  # longer than any key we issue; refuse before hashing megabytes


def hash_key(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class KeyRing:
    """The API keys of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, tenant: str, name: str = "", admin: bool = False) -> tuple[ApiKey, str]:
        """A new key for ``tenant``: its listing and the secret (shown once, never stored)."""
        key = ApiKey(
            id=uuid4().hex[:12],
            tenant=check_id(tenant, "tenant"),
            name=check_text(name, "name", 200) if name else "",
            admin=admin,
            created_at=utcnow(),
        )
        secret = PREFIX + secrets.token_urlsafe(32)
        self.store.add_api_key(key, hash_key(secret))
        return key, secret

    def list(self) -> list[ApiKey]:
        """Every key, oldest first (revoked ones show ``revoked_at``)."""
        return self.store.api_keys()

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key at once, for every server process on this store."""
        return self.store.revoke_api_key(check_id(key_id, "key id"), utcnow())

    def active(self) -> bool:
        """Whether any key is not revoked (a server with none may run open on loopback)."""
        return any(k.revoked_at is None for k in self.store.api_keys())

    def authenticate(self, secret: str | None) -> ApiKey:
        """The live key a request presented; ``AuthError`` if none, unknown or revoked."""
        if not secret:
            raise AuthError(
                "this server needs an API key: send 'Authorization: Bearer <key>' "
                "(create one with `remem keys create --tenant NAME`)"
            )
        key = None
        if len(secret) <= MAX_KEY_CHARS:
            key = self.store.api_key_by_hash(hash_key(secret))
        if key is None or key.revoked_at is not None:
            raise AuthError("the API key is unknown or revoked; ask an admin for a valid key")
        return key
