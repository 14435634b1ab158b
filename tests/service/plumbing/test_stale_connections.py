"""A database restart leaves dead connections in the pool: an idle one is checked before
use; one that dies while busy fails its work as an outage (503 / retried), never as a bug."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from salesrail.db.database import Database
from salesrail.db.errors import is_outage


async def kill_connections(url: str) -> int:
    """What a restart does to the pool: every server process of that database ends."""
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    database = dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        return len(
            await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        )
    finally:
        await admin.close()


async def select_one(db: Database) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(text("SELECT 1")))


async def test_an_idle_dead_connection_is_replaced_before_use(postgres_url: str) -> None:
    db = Database(postgres_url, idle_ping_after_s=0.1)
    try:
        assert await select_one(db) == 1
        assert await kill_connections(postgres_url) >= 1
        await asyncio.sleep(0.3)
        assert await select_one(db) == 1  # pinged, found dead, reconnected: nobody noticed
    finally:
        await db.dispose()


async def test_a_connection_that_died_while_recently_used_fails_once_as_an_outage(
    postgres_url: str,
) -> None:
    db = Database(postgres_url, idle_ping_after_s=3600)
    try:
        assert await select_one(db) == 1
        assert await kill_connections(postgres_url) >= 1
        with pytest.raises(Exception) as failed:
            await select_one(db)
        assert is_outage(failed.value)
        assert await select_one(db) == 1  # the pool dropped it; the next one is fresh
    finally:
        await db.dispose()
