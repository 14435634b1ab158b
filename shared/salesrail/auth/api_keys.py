"""API keys for machine clients: shown once, stored as a SHA-256 hash, scoped to a role.

A key reads `srk_<key id>_<secret>`. The secret has 256 bits of entropy, so a plain SHA-256
is enough (no password stretching needed); the key id finds the row without a scan.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table, insert, select, update

from salesrail.auth.principal import Principal, Role
from salesrail.clock import Clock
from salesrail.db.database import Database
from salesrail.db.migrate import migrate
from salesrail.db.types import JsonDoc, UtcDateTime

AUTH_VERSIONS = Path(str(files("salesrail.auth") / "migrations"))
_PREFIX = "srk"

auth_metadata = MetaData()
api_keys = Table(
    "api_keys",
    auth_metadata,
    Column("key_id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    Column("rep_id", String(64), nullable=True),
    Column("name", String(200), nullable=True),
    Column("scopes", JsonDoc, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: str
    role: Role
    rep_id: str | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyStore:
    def __init__(self, db: Database, *, clock: Clock, cache_s: float = 30.0) -> None:
        self.db = db
        self.clock = clock
        self.cache_s = cache_s
        self._cache: dict[str, _CachedKey] = {}

    async def migrate(self) -> None:
        await migrate(self.db, [AUTH_VERSIONS])

    async def create(
        self,
        *,
        role: Role,
        rep_id: str | None = None,
        name: str | None = None,
        scopes: list[str] | None = None,
    ) -> str:
        """Store a new key and return it: the only time its secret is ever seen."""
        key_id = secrets.token_hex(6)
        key = f"{_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        async with self.db.transaction() as session:
            await session.execute(
                insert(api_keys).values(
                    key_id=key_id,
                    key_hash=_hash(key),
                    role=role.value,
                    rep_id=rep_id,
                    name=name,
                    scopes=scopes or [],
                    created_at=self.clock.now(),
                )
            )
        return key

    async def revoke(self, key_id: str) -> bool:
        async with self.db.transaction() as session:
            result = await session.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self.clock.now())
            )
        self._cache.pop(key_id, None)
        return bool(result.rowcount)

    async def list(self) -> list[ApiKeyInfo]:
        async with self.db.transaction() as session:
            rows = (await session.execute(select(api_keys).order_by(api_keys.c.created_at))).all()
        return [
            ApiKeyInfo(r.key_id, Role(r.role), r.rep_id, r.name, r.created_at, r.revoked_at)
            for r in rows
        ]

    async def has_admin_key(self) -> bool:
        async with self.db.transaction() as session:
            found = await session.scalar(
                select(api_keys.c.key_id)
                .where(api_keys.c.role == Role.ADMIN.value, api_keys.c.revoked_at.is_(None))
                .limit(1)
            )
        return found is not None

    async def verify(self, key: str) -> Principal | None:
        """The principal of a valid, unrevoked key; None otherwise. Rows are cached briefly."""
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != _PREFIX:
            return None
        key_id = parts[1]
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is None or cached.expires < now:
            cached = await self._load(key_id, expires=now + self.cache_s)
            self._cache[key_id] = cached
        if cached.principal is None or not hmac.compare_digest(cached.key_hash, _hash(key)):
            return None
        return cached.principal

    async def _load(self, key_id: str, *, expires: float) -> _CachedKey:
        async with self.db.sessions() as session:
            row = (
                await session.execute(
                    select(api_keys).where(
                        api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)
                    )
                )
            ).first()
        if row is None:
            return _CachedKey(expires, "", None)
        principal = Principal(
            # A rep's key acts as that rep; other keys are known by id (names are only labels).
            subject=row.rep_id or f"key:{row.key_id}",
            role=Role(row.role),
            via="api_key",
            rep_id=row.rep_id,
            scopes=frozenset(row.scopes or []),
        )
        return _CachedKey(expires, row.key_hash, principal)


@dataclass(frozen=True)
class _CachedKey:
    expires: float
    key_hash: str
    principal: Principal | None
