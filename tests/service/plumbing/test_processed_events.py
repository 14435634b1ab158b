"""A batch's fresh events: recorded once per consumer, the same answer on both backends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from salesrail.bus.processed import already_processed, record_fresh
from salesrail.bus.tables import plumbing_metadata, processed_events
from salesrail.db.database import Database
from salesrail.events.envelope import Envelope


def _envelope(event_id: str) -> Envelope:
    return Envelope(
        id=event_id,
        type="lead.received",
        occurred_at=datetime.now(UTC),
        source="test",
        data={"lead_id": event_id},
    )


async def _ready(database_url: str) -> Database:
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(plumbing_metadata.create_all)
    return db


async def _applied_by_a_and_only_b_by_b(db: Database, now: datetime) -> list[str]:
    """3,000 events consumer "a" applied, and "only-b" that only consumer "b" did."""
    applied = [str(uuid.uuid4()) for _ in range(3000)]
    async with db.transaction() as session:
        await session.execute(
            processed_events.insert(),
            [{"consumer": "a", "event_id": i, "processed_at": now} for i in applied]
            + [{"consumer": "b", "event_id": "only-b", "processed_at": now}],
        )
    return applied


async def test_only_events_new_to_this_consumer_come_back_in_order_once(database_url: str) -> None:
    db = await _ready(database_url)
    try:
        now = datetime.now(UTC)
        applied = await _applied_by_a_and_only_b_by_b(db, now)
        new = [str(uuid.uuid4()) for _ in range(490)]
        batch = [*applied[::300], *new[:245], new[0], "only-b", *new[245:]]
        async with db.transaction() as session:
            fresh = await record_fresh(session, "a", [_envelope(i) for i in batch], now=now)
            nothing = await record_fresh(session, "a", [], now=now)
        assert [e.id for e in fresh] == [*new[:245], "only-b", *new[245:]]
        assert nothing == []
        async with db.transaction() as session:
            again = await record_fresh(session, "a", [_envelope(i) for i in batch], now=now)
        assert again == []
    finally:
        await db.dispose()


async def test_the_lookup_alone_finds_this_consumers_ids_and_records_nothing(
    database_url: str,
) -> None:
    db = await _ready(database_url)
    try:
        now = datetime.now(UTC)
        applied = await _applied_by_a_and_only_b_by_b(db, now)
        unseen = [str(uuid.uuid4()) for _ in range(490)]
        async with db.transaction() as session:
            seen = await already_processed(session, "a", [*applied[::300], *unseen, "only-b"])
            none = await already_processed(session, "a", [])
        assert seen == set(applied[::300])
        assert none == set()
        async with db.transaction() as session:
            assert await already_processed(session, "a", unseen) == set()
    finally:
        await db.dispose()


async def test_the_same_event_applied_meanwhile_is_fresh_to_one_transaction_only(
    database_url: str,
) -> None:
    db = await _ready(database_url)
    consumer = f"race-{uuid.uuid4().hex[:8]}"
    shared = [_envelope(str(uuid.uuid4())) for _ in range(20)]
    own = _envelope(str(uuid.uuid4()))
    now = datetime.now(UTC)
    try:
        first_recorded = asyncio.Event()
        let_first_commit = asyncio.Event()

        async def first() -> list[str]:
            async with db.transaction() as session:
                fresh = await record_fresh(session, consumer, shared, now=now)
                first_recorded.set()
                await let_first_commit.wait()
            return [e.id for e in fresh]

        async def second() -> list[str]:
            await first_recorded.wait()
            async with db.transaction() as session:
                fresh = await record_fresh(session, consumer, [*shared, own], now=now)
            return [e.id for e in fresh]

        first_task = asyncio.create_task(first())
        second_task = asyncio.create_task(second())
        await first_recorded.wait()
        await asyncio.sleep(0.2)
        let_first_commit.set()
        first_ids, second_ids = await asyncio.gather(first_task, second_task)
        assert first_ids == [e.id for e in shared]
        assert second_ids == [own.id]
    finally:
        await db.dispose()
