"""The outbox relay publishes this process's commits as they happen, in commit order, and loses
or repeats nothing when the broker stops answering for a while."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from sqlalchemy import func, select

from salesrail.bus.outbox import Outbox, OutboxRelay
from salesrail.bus.tables import outbox as outbox_table
from salesrail.clock import system_clock
from salesrail.db.database import Database
from salesrail.db.migrate import PLUMBING_VERSIONS, migrate
from salesrail.embedded_nats import EmbeddedNats
from salesrail.events.catalog import LeadReceived
from salesrail.events.streams import ensure_streams
from tests.support.bus import wait_for_messages

SUBJECT = "salesrail.lead.received"


def _event(run: str, n: int) -> LeadReceived:
    return LeadReceived(
        lead_id=f"{run}-{n:04d}",
        source="web_form",
        company_name="杭州某某紧固件有限公司",
        city="杭州",
        category="紧固件",
        received_at=datetime.now(UTC),
    )


async def _commit(db: Database, outbox: Outbox, run: str, numbers: range) -> None:
    """One transaction per event, one after the other, as requests do."""
    for n in numbers:
        async with db.transaction() as session:
            await outbox.stage(session, _event(run, n))
            await outbox.write_staged(session)


async def _lead_ids(nats_url: str, run: str, count: int) -> list[str]:
    messages = await wait_for_messages(
        nats_url,
        SUBJECT,
        count=count,
        where=lambda e: e["data"]["lead_id"].startswith(run),
        timeout_s=20,
        settle_s=0.5,
    )
    return [json.loads(m.data)["data"]["lead_id"] for m in messages]


async def _unsent(db: Database) -> int:
    async with db.transaction() as session:
        query = select(func.count()).select_from(outbox_table)
        return await session.scalar(query.where(outbox_table.c.sent_at.is_(None))) or 0


async def _until_all_marked(db: Database, timeout_s: float = 10) -> int:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        unsent = await _unsent(db)
        if not unsent or asyncio.get_running_loop().time() >= deadline:
            return unsent
        await asyncio.sleep(0.05)


async def _leading(relay: OutboxRelay) -> None:
    for _ in range(200):
        if relay.leading:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the relay did not take the lead")


@pytest.fixture
async def migrated(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await migrate(db, [PLUMBING_VERSIONS])
    try:
        yield db
    finally:
        await db.dispose()


async def test_commits_here_reach_nats_in_commit_order_and_are_marked_sent(
    migrated: Database, nats_url: str
) -> None:
    client = await nats.connect(nats_url)
    await ensure_streams(client.jetstream(), duplicate_window_s=120)
    # Polls once a minute: only the hand-over at commit can publish within the test.
    relay = OutboxRelay(db=migrated, js=client.jetstream(), clock=system_clock, poll_interval_s=60)
    relay.start()
    run = f"order-{uuid.uuid4().hex[:8]}"
    try:
        await _leading(relay)
        await _commit(migrated, Outbox(source="test", clock=system_clock), run, range(60))
        assert await _lead_ids(nats_url, run, 60) == [f"{run}-{n:04d}" for n in range(60)]
        assert await _until_all_marked(migrated) == 0
    finally:
        await relay.stop()
        await client.close()


async def test_a_backlog_goes_out_before_what_is_committed_after_the_relay_starts(
    postgres_url: str, nats_url: str
) -> None:
    client = await nats.connect(nats_url)
    await ensure_streams(client.jetstream(), duplicate_window_s=120)
    here, elsewhere = Database(postgres_url), Database(postgres_url)
    await migrate(here, [PLUMBING_VERSIONS])
    run = f"backlog-{uuid.uuid4().hex[:8]}"
    # Committed while no relay ran (by a process that is gone now).
    await _commit(elsewhere, Outbox(source="gone", clock=system_clock), run, range(30))
    relay = OutboxRelay(db=here, js=client.jetstream(), clock=system_clock, poll_interval_s=60)
    relay.start()
    try:
        await _commit(here, Outbox(source="test", clock=system_clock), run, range(30, 60))
        assert await _lead_ids(nats_url, run, 60) == [f"{run}-{n:04d}" for n in range(60)]
        assert await _until_all_marked(here) == 0
    finally:
        await relay.stop()
        await client.close()
        await here.dispose()
        await elsewhere.dispose()


async def test_a_broker_that_stops_answering_for_a_while_gets_every_event_once_in_order(
    postgres_url: str, tmp_path: Path
) -> None:
    # A server of this test alone: it is frozen (SIGSTOP) and thawed below.
    server = EmbeddedNats(store_dir=tmp_path / "nats", server_name=f"relay-{uuid.uuid4().hex[:8]}")
    server.start()
    db = Database(postgres_url)
    client = None
    relay = None
    try:
        await migrate(db, [PLUMBING_VERSIONS])
        client = await nats.connect(server.url)
        await ensure_streams(client.jetstream(), duplicate_window_s=120)
        relay = OutboxRelay(db=db, js=client.jetstream(), clock=system_clock, publish_timeout_s=0.3)
        relay.start()
        await _leading(relay)
        outbox = Outbox(source="test", clock=system_clock)
        run = f"frozen-{uuid.uuid4().hex[:8]}"
        await _commit(db, outbox, run, range(20))
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            # Published into a silent socket: no acknowledgement comes, again and again.
            await _commit(db, outbox, run, range(20, 40))
            await asyncio.sleep(1.5)
            assert await _unsent(db) >= 20
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        await _commit(db, outbox, run, range(40, 60))
        assert await _lead_ids(server.url, run, 60) == [f"{run}-{n:04d}" for n in range(60)]
        info = await client.jetstream().stream_info("SALESRAIL_LEAD")
        assert info.state.messages == 60  # the copies sent again were dropped
        assert await _until_all_marked(db) == 0
    finally:
        if relay is not None:
            await relay.stop()
        if client is not None:
            await client.close()
        await db.dispose()
        server.stop()
