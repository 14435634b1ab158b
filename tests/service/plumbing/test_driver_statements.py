"""Statements sent straight to asyncpg behave as the session's own: same transaction, same
errors, the session usable afterwards (PostgreSQL: the hot paths' fixed statements)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from salesrail.db import driver
from salesrail.db.database import Database
from salesrail.db.types import UtcDateTime
from tests.support.tables import database_with

metadata = MetaData()
items = Table(
    "driver_items",
    metadata,
    Column("name", String(16), primary_key=True),
    Column("size", Integer),
    Column("seen_at", UtcDateTime),
)

INSERT = text(
    "INSERT INTO driver_items (name, size, seen_at) "
    "SELECT * FROM unnest(CAST(:names AS text[]), CAST(:sizes AS int[]), "
    "CAST(:seen AS timestamptz[]))"
)
# The same parameter twice, and named out of order: bound by name.
READ = text(
    "SELECT name, size, seen_at FROM driver_items "
    "WHERE size >= :least AND name = ANY(CAST(:names AS text[])) AND size >= :least "
    "ORDER BY name"
)


@pytest.fixture
async def db(postgres_url: str):
    async with database_with(postgres_url, metadata) as database:
        yield database


async def _names(db: Database) -> list[str]:
    async with db.transaction() as session:
        return list((await session.scalars(select(items.c.name).order_by(items.c.name))).all())


async def test_statements_join_the_session_transaction_and_read_back_by_name(db: Database) -> None:
    at = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    async with db.transaction() as session:
        # The first statement of its transaction: it must not commit on its own.
        await driver.execute(
            session, INSERT, {"names": ["a", "b", "c"], "sizes": [1, 2, 3], "seen": [at] * 3}
        )
        # The session's own statements see what the driver wrote, and the reverse.
        await session.execute(items.insert().values(name="d", size=4, seen_at=at))
        rows = await driver.fetch(session, READ, {"names": ["b", "c", "d", "x"], "least": 2})
    assert [(r["name"], r["size"], r["seen_at"]) for r in rows] == [
        ("b", 2, at),
        ("c", 3, at),
        ("d", 4, at),
    ]
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await driver.execute(session, INSERT, {"names": ["e"], "sizes": [5], "seen": [at]})
            raise RuntimeError("rolled back")
    assert await _names(db) == ["a", "b", "c", "d"]


async def test_failures_are_sqlalchemys_and_leave_nothing_half_written(db: Database) -> None:
    at = datetime.now(UTC)
    async with db.transaction() as session:
        await driver.execute(session, INSERT, {"names": ["taken"], "sizes": [1], "seen": [at]})
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await driver.execute(
                session, INSERT, {"names": ["new", "taken"], "sizes": [2, 3], "seen": [at, at]}
            )
    with pytest.raises(DBAPIError, match="too long"):
        async with db.transaction() as session:
            await driver.execute(session, INSERT, {"names": ["x" * 17], "sizes": [1], "seen": [at]})
    with pytest.raises(KeyError):  # a parameter not given is refused before anything is sent
        async with db.transaction() as session:
            await driver.fetch(session, READ, {"names": ["taken"]})
    assert await _names(db) == ["taken"]
    # The pooled connections are still good for the next transaction.
    async with db.transaction() as session:
        rows = await driver.fetch(session, READ, {"names": ["taken"], "least": 0})
    assert [r["name"] for r in rows] == ["taken"]
