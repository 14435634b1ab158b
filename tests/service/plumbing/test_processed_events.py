"""A batch's "applied already?" lookup: the same answer on both backends, fast on a grown table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from salesrail.bus.processed import already_processed
from salesrail.bus.tables import plumbing_metadata, processed_events
from salesrail.db.database import Database


async def test_only_this_consumers_applied_ids_come_back(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(plumbing_metadata.create_all)
        applied = [str(uuid.uuid4()) for _ in range(3000)]
        now = datetime.now(UTC)
        async with db.transaction() as session:
            await session.execute(
                processed_events.insert(),
                [{"consumer": "a", "event_id": i, "processed_at": now} for i in applied]
                + [{"consumer": "b", "event_id": "only-b", "processed_at": now}],
            )
        batch = [*applied[::300], *(str(uuid.uuid4()) for _ in range(490)), "only-b"]
        async with db.transaction() as session:
            seen = await already_processed(session, "a", batch)
            none = await already_processed(session, "a", [])
        assert seen == set(applied[::300])
        assert none == set()
    finally:
        await db.dispose()
