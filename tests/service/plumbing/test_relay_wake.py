"""The leading outbox relay hears of commits made by other processes (workers, replicas)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import nats
from sqlalchemy import select

from salesrail.bus.outbox import Outbox, OutboxRelay
from salesrail.bus.tables import outbox as outbox_table
from salesrail.clock import system_clock
from salesrail.db.database import Database
from salesrail.db.migrate import PLUMBING_VERSIONS, migrate
from salesrail.events.catalog import LeadReceived
from salesrail.events.streams import ensure_streams


async def test_a_commit_elsewhere_is_published_at_once_not_at_the_next_poll(
    postgres_url: str, nats_url: str
) -> None:
    client = await nats.connect(nats_url)
    js = client.jetstream()
    await ensure_streams(js, duplicate_window_s=120)
    leading_db, other_db = Database(postgres_url), Database(postgres_url)
    await migrate(leading_db, [PLUMBING_VERSIONS])
    # Polls once a minute: only a notification can make it publish within the test.
    relay = OutboxRelay(db=leading_db, js=js, clock=system_clock, poll_interval_s=60)
    relay.start()
    try:
        for _ in range(100):  # its first flush takes the lead
            if relay._leadership is not None:
                break
            await asyncio.sleep(0.05)
        assert relay._leadership is not None
        sent_at = None
        for round_ in range(3):  # and again after each wake
            event = LeadReceived(
                lead_id=f"lead-{uuid.uuid4()}",
                source="web_form",
                company_name="杭州某某紧固件有限公司",
                city="杭州",
                category="紧固件",
                received_at=datetime.now(UTC),
            )
            other = Outbox(source="another-worker", clock=system_clock)
            committed = time.monotonic()
            async with other_db.transaction() as session:
                envelope = await other.stage(session, event)
                await other.write_staged(session)
            while time.monotonic() - committed < 5:
                async with leading_db.transaction() as session:
                    sent_at = await session.scalar(
                        select(outbox_table.c.sent_at).where(outbox_table.c.event_id == envelope.id)
                    )
                if sent_at is not None:
                    break
                await asyncio.sleep(0.02)
            assert sent_at is not None, f"round {round_}: not published within 5 s"
            message = await js.get_last_msg("SALESRAIL_LEAD", envelope.subject)
            assert event.lead_id.encode() in message.data
    finally:
        await relay.stop()
        await client.close()
        await leading_db.dispose()
        await other_db.dispose()
