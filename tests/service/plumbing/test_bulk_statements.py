"""Set-at-a-time inserts and lookups: the same rows and answers on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.exc import StatementError

from salesrail.db.bulk import insert_rows, is_postgresql, one_of
from salesrail.db.database import Database
from salesrail.db.types import UtcDateTime

metadata = MetaData()
things = Table(
    "bulk_things",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("size", Integer),
    Column("seen_at", UtcDateTime),
    Column("note", String(32), nullable=True),
)


@pytest.fixture
async def db(database_url: str):
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
    await database.dispose()


async def test_rows_are_stored_column_for_column_and_existing_ones_are_kept(db: Database) -> None:
    at = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    plus8 = datetime(2026, 11, 24, 1, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    async with db.transaction() as session:
        await insert_rows(
            session,
            things,
            [
                {"name": f"n{i}", "size": i, "seen_at": at + timedelta(minutes=i), "note": None}
                for i in range(700)
            ],
        )
    async with db.transaction() as session:
        await insert_rows(
            session,
            things,
            [
                {"name": "n1", "size": -1, "seen_at": at, "note": "replaced?"},
                {"name": "杭州", "size": 7, "seen_at": plus8, "note": "新"},
            ],
            skip_existing=True,
        )
    async with db.transaction() as session:
        rows = {r.name: r for r in (await session.execute(select(things))).all()}
    assert len(rows) == 701
    assert (rows["n1"].size, rows["n1"].note) == (1, None)  # kept, not overwritten
    assert rows["n699"].seen_at == at + timedelta(minutes=699)
    assert rows["杭州"].seen_at == plus8 and rows["杭州"].seen_at.tzinfo is not None
    assert rows["杭州"].note == "新"


async def test_a_naive_time_is_refused_and_nothing_of_the_batch_is_stored(db: Database) -> None:
    rows = [
        {"name": "ok", "size": 1, "seen_at": datetime.now(UTC), "note": None},
        {"name": "naive", "size": 2, "seen_at": datetime(2026, 1, 1), "note": None},
    ]
    with pytest.raises(StatementError, match="naive datetime"):
        async with db.transaction() as session:
            await insert_rows(session, things, rows)
    async with db.transaction() as session:
        assert (await session.execute(select(things))).all() == []


async def test_one_of_matches_exactly_the_given_values(db: Database) -> None:
    at = datetime.now(UTC)
    async with db.transaction() as session:
        await insert_rows(
            session,
            things,
            [{"name": f"n{i}", "size": i, "seen_at": at, "note": None} for i in range(50)],
        )
    async with db.transaction() as session:
        postgresql = is_postgresql(session)
        for wanted in (["n3", "n7", "absent"], [], ["n49"]):
            found = await session.scalars(
                select(things.c.name).where(one_of(things.c.name, wanted, postgresql=postgresql))
            )
            assert sorted(found) == sorted(w for w in wanted if w != "absent")
