"""Set-at-a-time inserts and lookups: the same rows and answers on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from salesrail.db.bulk import (
    copy_columns,
    insert_columns,
    insert_rows,
    is_postgresql,
    one_of,
    update_rows,
)
from salesrail.db.database import Database
from salesrail.db.types import BigIntPK, JsonDoc, UtcDateTime
from tests.support.tables import database_with

metadata = MetaData()
things = Table(
    "bulk_things",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("size", Integer),
    Column("seen_at", UtcDateTime),
    Column("note", String(32), nullable=True),
    Column("doc", JsonDoc, nullable=True),
)
pairs = Table(
    "bulk_pairs",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("name", String(32), primary_key=True),
    Column("size", Integer),
)
# Like the outbox: the order of an autoincrement key is the order events were staged in.
queue = Table(
    "bulk_queue",
    metadata,
    Column("seq", BigIntPK, primary_key=True, autoincrement=True),
    Column("item", String(32)),
)


@pytest.fixture
async def db(database_url: str):
    async with database_with(database_url, metadata) as database:
        yield database


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


async def test_returning_names_only_the_rows_inserted_in_the_order_given(db: Database) -> None:
    at = datetime.now(UTC)
    names = [f"r{i:04d}" for i in range(1000)]
    async with db.transaction() as session:
        await insert_rows(session, things, [{"name": "r0500", "size": 0, "seen_at": at}])
        inserted = await insert_columns(
            session,
            things,
            {"name": names, "size": list(range(1000)), "seen_at": [at] * 1000},
            skip_existing=True,
            returning="name",
        )
    assert inserted == [n for n in names if n != "r0500"]


async def test_update_rows_changes_each_row_by_its_key_and_nothing_else(db: Database) -> None:
    at = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    async with db.transaction() as session:
        await insert_rows(
            session,
            things,
            [{"name": f"u{i}", "size": i, "seen_at": at, "note": "old"} for i in range(600)],
        )
    async with db.transaction() as session:
        await update_rows(
            session,
            things,
            "name",
            [
                {"name": f"u{i}", "size": -i, "note": None if i % 2 else "新"}
                for i in range(0, 600, 3)
            ]
            + [{"name": "absent", "size": 1, "note": "x"}],
        )
    async with db.transaction() as session:
        rows = {r.name: r for r in (await session.execute(select(things))).all()}
    assert len(rows) == 600
    for i in range(600):
        row = rows[f"u{i}"]
        if i % 3:
            assert (row.size, row.note) == (i, "old")
        else:
            assert (row.size, row.note) == (-i, None if i % 2 else "新")
        assert row.seen_at == at


async def test_json_values_keep_their_shape(db: Database) -> None:
    at = datetime.now(UTC)
    docs = [["rep:a", "rep:b"], {"城市": "杭州", "n": [1, 2]}, [], "text", None]
    async with db.transaction() as session:
        await insert_rows(
            session,
            things,
            [{"name": f"j{i}", "size": i, "seen_at": at, "doc": d} for i, d in enumerate(docs)],
        )
        await update_rows(session, things, "name", [{"name": "j2", "doc": [["nested"]]}])
    async with db.transaction() as session:
        rows = {r.name: r.doc for r in (await session.execute(select(things))).all()}
    assert rows == {"j0": docs[0], "j1": docs[1], "j2": [["nested"]], "j3": "text", "j4": None}


async def test_an_autoincrement_key_follows_the_order_given(db: Database) -> None:
    items = [f"{(i * 7919) % 2000:04d}" for i in range(2000)]  # not sorted
    async with db.transaction() as session:
        await insert_rows(session, queue, [{"item": item} for item in items[:1000]])
        await insert_rows(session, queue, [{"item": item} for item in items[1000:]])
    async with db.transaction() as session:
        stored = (await session.scalars(select(queue.c.item).order_by(queue.c.seq))).all()
    assert stored == items


async def test_an_over_long_string_is_refused_never_cut(db: Database) -> None:
    at = datetime.now(UTC)
    long_name = "杭州" * 20  # 40 characters for a String(32) column
    try:
        async with db.transaction() as session:
            await insert_rows(session, things, [{"name": long_name, "size": 1, "seen_at": at}])
    except DBAPIError as exc:
        assert "too long" in str(exc)
    async with db.transaction() as session:
        stored = (await session.scalars(select(things.c.name))).all()
        postgresql = is_postgresql(session)
    # PostgreSQL refuses it; SQLite does not enforce lengths and keeps it whole.
    assert stored == ([] if postgresql else [long_name])


async def test_update_rows_by_a_key_of_two_columns(db: Database) -> None:
    async with db.transaction() as session:
        await insert_rows(
            session,
            pairs,
            [{"kind": k, "name": n, "size": 0} for k in ("lead", "rep") for n in ("a", "b")],
        )
        await update_rows(
            session,
            pairs,
            ("kind", "name"),
            [{"kind": "lead", "name": "b", "size": 2}, {"kind": "rep", "name": "a", "size": 3}],
        )
    async with db.transaction() as session:
        sizes = {(r.kind, r.name): r.size for r in (await session.execute(select(pairs))).all()}
    assert sizes == {("lead", "a"): 0, ("lead", "b"): 2, ("rep", "a"): 3, ("rep", "b"): 0}


async def test_columns_of_different_lengths_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="different lengths"):
        async with db.transaction() as session:
            await insert_columns(
                session, things, {"name": ["x", "y"], "size": [1], "seen_at": [datetime.now(UTC)]}
            )
    async with db.transaction() as session:
        assert (await session.execute(select(things))).all() == []


async def test_copied_rows_are_stored_as_inserted_ones_in_order_and_with_the_transaction(
    db: Database,
) -> None:
    at = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    plus8 = datetime(2026, 11, 24, 1, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    names = [f"c{i}" for i in range(700)]
    async with db.transaction() as session:
        # The first statement of its transaction: it must not commit on its own.
        await copy_columns(
            session,
            things,
            {
                "name": [*names, "杭州"],
                "size": [*range(700), 7],
                "seen_at": [at] * 700 + [plus8],
                "note": [None] * 700 + ["新"],
                "doc": [None] * 700 + [{"城市": "杭州", "n": [1, 2]}],
            },
        )
        await copy_columns(session, queue, {"item": ["first", "second", "third"]})
        await copy_columns(session, queue, {"item": []})  # nothing to do
    async with db.transaction() as session:
        rows = {r.name: r for r in (await session.execute(select(things))).all()}
        items = (await session.scalars(select(queue.c.item).order_by(queue.c.seq))).all()
    assert len(rows) == 701 and rows["c699"].size == 699 and rows["c699"].seen_at == at
    assert rows["杭州"].seen_at == plus8 and rows["杭州"].note == "新"
    assert rows["杭州"].doc == {"城市": "杭州", "n": [1, 2]} and rows["c1"].doc is None
    assert items == ["first", "second", "third"]

    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await copy_columns(session, pairs, {"kind": ["lead"], "name": ["x"], "size": [1]})
            raise RuntimeError("rolled back")
    async with db.transaction() as session:
        assert (await session.execute(select(pairs))).all() == []


async def test_copy_fails_as_an_insert_does(db: Database) -> None:
    at = datetime.now(UTC)
    async with db.transaction() as session:
        await copy_columns(session, things, {"name": ["taken"], "size": [1], "seen_at": [at]})
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await copy_columns(
                session, things, {"name": ["new", "taken"], "size": [2, 3], "seen_at": [at, at]}
            )
    with pytest.raises(StatementError, match="naive datetime"):
        async with db.transaction() as session:
            await copy_columns(
                session, things, {"name": ["naive"], "size": [1], "seen_at": [datetime(2026, 1, 1)]}
            )
    if not db.is_sqlite:  # SQLite keeps over-long strings
        with pytest.raises(DBAPIError, match="too long"):
            async with db.transaction() as session:
                await copy_columns(
                    session, things, {"name": ["x" * 33], "size": [1], "seen_at": [at]}
                )
    with pytest.raises(ValueError, match="different lengths"):
        async with db.transaction() as session:
            await copy_columns(session, things, {"name": ["a", "b"], "size": [1]})
    async with db.transaction() as session:
        assert (await session.scalars(select(things.c.name))).all() == ["taken"]
