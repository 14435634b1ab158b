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
        "instants",
        metadata,
        Column("id", String(8), primary_key=True),
        Column("at", UtcDateTime),
        Column("doc", JsonDoc),
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

            versions = (
                await session.execute(text("SELECT version_num FROM alembic_version"))
            ).all()
        assert [v[0] for v in versions] == ["plumbing_0002"]
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
        assert (principal.role, principal.rep_id, principal.via) == (
            Role.REP,
            "rep-zhang",
            "api_key",
        )
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


async def test_housekeeping_trims_old_plumbing_rows_and_keeps_unsent_events(
    database_url: str,
) -> None:
    from salesrail.bus.housekeeping import Housekeeping
    from salesrail.bus.tables import outbox, processed_events

    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    db = Database(database_url)
    try:
        await migrate(db, [PLUMBING_VERSIONS])
        long_ago = now - timedelta(days=30)
        async with db.transaction() as session:
            for event_id, sent_at in (
                ("old-sent", long_ago),
                ("old-unsent", None),
                ("new-sent", now),
            ):
                await session.execute(
                    insert(outbox).values(
                        event_id=event_id,
                        subject="salesrail.lead.received",
                        payload=b"{}",
                        created_at=long_ago,
                        sent_at=sent_at,
                        attempts=0,
                    )
                )
            for event_id, at in (("seen-long-ago", long_ago), ("seen-today", now)):
                await session.execute(
                    insert(processed_events).values(
                        consumer="c", event_id=event_id, processed_at=at
                    )
                )

        await Housekeeping(
            db=db,
            clock=FrozenClock(now),
            outbox_retention_s=86400,
            processed_retention_s=7 * 86400,
        ).purge()

        async with db.transaction() as session:
            kept_outbox = set((await session.scalars(select(outbox.c.event_id))).all())
            kept_seen = set((await session.scalars(select(processed_events.c.event_id))).all())
        assert kept_outbox == {"old-unsent", "new-sent"}
        assert kept_seen == {"seen-today"}
    finally:
        await db.dispose()


async def test_one_relay_per_database_publishes_and_another_takes_over_when_it_goes(
    postgres_url: str,
) -> None:
    from salesrail.bus.outbox import OutboxRelay
    from salesrail.clock import system_clock

    first_db, second_db = Database(postgres_url), Database(postgres_url)
    try:
        first = OutboxRelay(db=first_db, js=None, clock=system_clock)  # type: ignore[arg-type]
        second = OutboxRelay(db=second_db, js=None, clock=system_clock)  # type: ignore[arg-type]
        assert await first._lead() is True
        assert await second._lead() is False
        assert await first._lead() is True  # still the leader
        await first._resign()  # a replica stops (or its connection dies)
        assert await second._lead() is True
        assert await first._lead() is False
        await second._resign()
    finally:
        await first_db.dispose()
        await second_db.dispose()
