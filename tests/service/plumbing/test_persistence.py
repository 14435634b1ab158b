"""Database plumbing behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.exc import StatementError

from salesrail.auth.api_keys import ApiKeyStore
from salesrail.auth.principal import Role
from salesrail.clock import FrozenClock
from salesrail.db.database import Database
from salesrail.db.migrate import PLUMBING_VERSIONS, migrate
from salesrail.db.types import JsonDoc, UtcDateTime

SHANGHAI = timezone(timedelta(hours=8))


async def test_instants_come_back_as_the_same_aware_utc_instant(database_url: str) -> None:
    metadata = MetaData()
    table = Table(
        "instants", metadata, Column("id", String(8), primary_key=True),
        Column("at", UtcDateTime), Column("doc", JsonDoc),
    )
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        written = datetime(2026, 10, 1, 9, 30, 15, 123456, tzinfo=SHANGHAI)
        async with db.transaction() as session:
            await session.execute(
                insert(table).values(id="a", at=written, doc={"城市": "杭州", "tags": [1, 2]})
            )
        async with db.transaction() as session:
            row = (await session.execute(select(table))).one()
        assert row.at == written
        assert row.at.tzinfo is not None and row.at.utcoffset() == timedelta(0)
        assert row.doc == {"城市": "杭州", "tags": [1, 2]}

        with pytest.raises(StatementError, match="naive datetime"):
            async with db.transaction() as session:
                await session.execute(insert(table).values(id="b", at=datetime(2026, 1, 1)))
    finally:
        await db.dispose()


async def test_migrations_apply_once_even_when_replicas_start_together(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(db, [PLUMBING_VERSIONS]) for db in databases))
        await migrate(databases[0], [PLUMBING_VERSIONS])  # and again: nothing to do
        async with databases[0].transaction() as session:
            from sqlalchemy import text

            versions = (await session.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert [v[0] for v in versions] == ["plumbing_0001"]
    finally:
        for db in databases:
            await db.dispose()


async def test_api_keys_are_stored_hashed_verified_and_revocable(database_url: str) -> None:
    db = Database(database_url)
    try:
        store = ApiKeyStore(db, clock=FrozenClock(datetime(2026, 11, 23, tzinfo=UTC)), cache_s=0)
        await store.migrate()
        key = await store.create(role=Role.REP, rep_id="rep-zhang", name="mobile")

        principal = await store.verify(key)
        assert principal is not None
        assert (principal.role, principal.rep_id, principal.via) == (Role.REP, "rep-zhang", "api_key")
        assert await store.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None

        async with db.transaction() as session:
            from salesrail.auth.api_keys import api_keys

            stored = (await session.execute(select(api_keys))).one()
        assert key not in (stored.key_hash, stored.key_id)
        assert key.split("_", 2)[2] not in str(stored)

        assert await store.revoke(stored.key_id)
        assert await store.verify(key) is None
    finally:
        await db.dispose()
