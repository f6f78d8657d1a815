"""API keys for the management API: created, checked and revoked here and nowhere else.

A key is ``scimgate_key_`` + 43 base64url characters (256 random bits), so secret scanners
can tell it from a directory token by its prefix. As with directory tokens (see
``directory.tokens``), only the SHA-256 is stored: 256 bits of entropy make a slow hash
pointless, and a fast one keeps every request cheap. The key is shown once, at creation.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from scimgate.directory.tenancy import new_id, utcnow
from scimgate.errors import InvalidInput, NotFound
from scimgate.store.engine import Database
from scimgate.store.tables import api_keys

KEY_PREFIX = "scimgate_key_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is refreshed at most this often, so authenticating is not a write."""


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def key_hint(secret: str) -> str:
    """A harmless, recognisable fragment for listings: the prefix and last 4 characters."""
    return f"{KEY_PREFIX}…{secret[-4:]}"


def _iso(stamp: datetime | None) -> str | None:
    return stamp.isoformat().replace("+00:00", "Z") if stamp is not None else None


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    key_hint: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "key_hint": self.key_hint,
            "created_at": _iso(self.created_at),
            "last_used_at": _iso(self.last_used_at),
            "revoked_at": _iso(self.revoked_at),
        }


_COLUMNS = [c for c in api_keys.c if c.name != "key_hash"]


def _api_key(row: Any) -> ApiKey:
    return ApiKey(**{c.name: getattr(row, c.name) for c in _COLUMNS})


class ApiKeys:
    """Create, list, revoke and check management API keys."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is not retrievable later."""
        name = name.strip()
        if not name:
            raise InvalidInput("API key name must not be empty")
        secret = generate_key()
        key = ApiKey(
            id=new_id(),
            name=name,
            key_hint=key_hint(secret),
            created_at=utcnow(),
            last_used_at=None,
            revoked_at=None,
        )
        async with self.db.write() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id=key.id,
                    name=key.name,
                    key_hash=hash_key(secret),
                    key_hint=key.key_hint,
                    created_at=key.created_at,
                )
            )
        return key, secret

    async def list(self) -> builtins.list[ApiKey]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(*_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.id)
            )
            return [_api_key(r) for r in rows]

    async def get(self, key_id: str) -> ApiKey:
        async with self.db.read() as conn:
            row = (await conn.execute(select(*_COLUMNS).where(api_keys.c.id == key_id))).first()
        if row is None:
            raise NotFound(f"no API key with id {key_id!r}")
        return _api_key(row)

    async def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key; it stops working with this commit. Revoking twice is a no-op."""
        async with self.db.write() as conn:
            await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return await self.get(key_id)

    async def authenticate(self, secret: str) -> ApiKey | None:
        """The live key this secret is, or None (unknown, malformed or revoked).

        The row is found through the unique hash index; the final comparison is
        constant-time. ``last_used_at`` is written only when it is over a minute old."""
        if not secret.startswith(KEY_PREFIX) or len(secret) > 256:
            return None
        digest = hash_key(secret)
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(*_COLUMNS, api_keys.c.key_hash).where(api_keys.c.key_hash == digest)
                )
            ).first()
        if row is None or not hmac.compare_digest(row.key_hash.encode(), digest.encode()):
            return None
        key = _api_key(row)
        if key.revoked:
            return None
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            stale = now - LAST_USED_RESOLUTION
            async with self.db.write() as conn:
                await conn.execute(
                    update(api_keys)
                    .where(
                        api_keys.c.id == key.id,
                        or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at <= stale),
                    )
                    .values(last_used_at=now)
                )
        return key
