"""Transactional outbox: events are written with the state change, published afterwards.

A use case calls `Outbox.stage(session, data)` inside its transaction; the unit of work writes
every staged event in one INSERT just before it commits. The `OutboxRelay`
publishes committed rows to JetStream with `Nats-Msg-Id` = event id, then marks them sent. A
crash before the publish leaves the row unsent (published after restart); a crash after the
publish but before the mark re-sends it, and JetStream drops the copy inside its duplicate
window.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from nats.js import JetStreamContext
from prometheus_client import Counter
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from salesrail.bus.tables import outbox
from salesrail.clock import Clock
from salesrail.db.bulk import insert_rows, is_postgresql, one_of
from salesrail.db.database import Database
from salesrail.events.catalog import EventData
from salesrail.events.envelope import Envelope, new_event_id
from salesrail.faults import crash_point

log = structlog.get_logger(__name__)

_STAGED = "salesrail.outbox.staged"
_QUEUE = "salesrail.outbox.queue"
_RELAY_LOCK_ID = 7_316_552  # one publishing relay per database
# The PostgreSQL channel a commit with staged events notifies.
WAKE = "salesrail_outbox"
# `attempts` of an event the relay has set aside (see _park_unpublishable).
PARKED = 1_000_000
_HEADER_ALLOWANCE = 512  # the Nats-Msg-Id header and protocol framing

EVENTS_PARKED = Counter(
    "salesrail_outbox_events_parked_total", "Events the outbox relay set aside as unpublishable"
)


class Outbox:
    """Writes a service's outgoing events into its own database, in the caller's transaction."""

    def __init__(self, *, source: str, clock: Clock) -> None:
        self.source = source
        self.clock = clock
        # Whether a commit must notify the leading relay: not when this process's relay is
        # the leader (its own commit hook wakes it); the runtime sets it once it has a relay.
        self.wake_others: Callable[[], bool] = lambda: True

    async def stage(
        self,
        session: AsyncSession,
        data: EventData,
        *,
        event_type: str | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        """Queue an event in the session; `write_staged` inserts the queue before commit."""
        envelope = Envelope(
            id=new_event_id(),
            type=event_type or data.event_type,
            occurred_at=occurred_at or self.clock.now(),
            source=self.source,
            data=data.model_dump(mode="json", by_alias=True),
        )
        if "*" in envelope.type:
            raise ValueError(f"event type {envelope.type!r} needs a concrete name")
        session.info.setdefault(_QUEUE, []).append(
            {
                "event_id": envelope.id,
                "subject": envelope.subject,
                "payload": envelope.model_dump_json().encode(),
                "created_at": self.clock.now(),
                "attempts": 0,
            }
        )
        return envelope

    async def write_staged(self, session: AsyncSession) -> None:
        """One INSERT for every event staged in this transaction, in the order staged."""
        rows = session.info.pop(_QUEUE, None)
        if rows:
            await insert_rows(session, outbox, rows)
            session.info[_STAGED] = True
            if is_postgresql(session) and self.wake_others():
                # Delivered at commit, to the relay that leads (another process).
                await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WAKE})


class OutboxRelay:
    """Publishes committed outbox rows in order; wakes on commit, polls as a safety net."""

    def __init__(
        self,
        *,
        db: Database,
        js: JetStreamContext,
        clock: Clock,
        batch_size: int = 500,
        max_payload: Callable[[], int] = lambda: 0,
        poll_interval_s: float = 1.0,
        publish_timeout_s: float = 5.0,
    ) -> None:
        self.db = db
        self.js = js
        self.clock = clock
        self.batch_size = batch_size
        self.max_payload = max_payload
        self.poll_interval_s = poll_interval_s
        self.publish_timeout_s = publish_timeout_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published_total = 0
        self._leadership: AsyncConnection | None = None
        # Published, confirmed by the server, not yet marked sent (the next flush marks them).
        self._published: list[int] = []
        db.on_commit(self._after_commit)

    @property
    def leading(self) -> bool:
        """This relay publishes its database's events (it holds the relay lock)."""
        return self._leadership is not None

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_STAGED, False) and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Publish what is already committed, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        backoff = self.poll_interval_s
        while True:
            try:
                # Until a flush finds nothing: it also marks what the one before published, so
                # under load one transaction per batch both marks the last and reads the next.
                while await self.flush():
                    pass
                backoff = self.poll_interval_s
            except Exception as exc:  # broker or database away: keep the rows, try again later
                log.warning("outbox.relay_failed", error=repr(exc), retry_in_s=backoff)
                backoff = min(backoff * 2, 30.0)
                await self._resign()
            if self._stopping:
                await self._resign()
                return
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            except TimeoutError:
                pass
            self._wake.clear()

    async def flush(self) -> int:
        """Mark what the last flush published as sent, then publish the next batch of unsent
        events in order; returns how many it published.

        No transaction is open while waiting for NATS (SQLite would hold its only write lock):
        read, publish, and mark in the next flush's transaction (`_run` flushes until one finds
        nothing). A crash between publish and mark re-sends the batch, which JetStream drops as
        duplicates. On PostgreSQL one relay per database publishes (the leader, by advisory
        lock), so replicas cannot interleave and break the order.
        """
        if not await self._lead():
            return 0
        # Core, not an ORM session: the relay reads and writes plain rows.
        async with self.db.engine.begin() as connection:
            marked = await self._mark_sent(connection)
            rows = (
                await connection.execute(
                    select(outbox.c.seq, outbox.c.event_id, outbox.c.subject, outbox.c.payload)
                    .where(outbox.c.sent_at.is_(None), outbox.c.attempts < PARKED)
                    .order_by(outbox.c.seq)
                    .limit(self.batch_size)
                )
            ).all()
        self._published = self._published[marked:]  # committed: those are marked for good
        if not rows:
            return 0
        rows = await self._park_unpublishable(rows)
        if not rows:
            return 0
        crash_point("relay.before_publish")
        futures = [
            await self.js.publish_async(
                row.subject, row.payload, headers={"Nats-Msg-Id": row.event_id}
            )
            for row in rows
        ]
        await asyncio.wait_for(asyncio.gather(*futures), timeout=self.publish_timeout_s)
        crash_point("relay.after_publish")
        self._published += [row.seq for row in rows]
        self.published_total += len(rows)
        return len(rows)

    async def _mark_sent(self, connection: AsyncConnection) -> int:
        """Mark what the server confirmed as sent; how many (forgotten once committed)."""
        if not self._published:
            return 0
        await connection.execute(
            update(outbox)
            .where(
                one_of(
                    outbox.c.seq,
                    self._published,
                    postgresql=connection.dialect.name == "postgresql",
                )
            )
            .values(sent_at=self.clock.now())
        )
        return len(self._published)

    async def _park_unpublishable(self, rows: list[Any]) -> list[Any]:
        """Set aside events the server would refuse for ever (too large), so they cannot
        block every event after them; they stay in the table with the reason."""
        limit = self.max_payload()
        if not limit:
            return rows
        too_big = [row for row in rows if len(row.payload) + _HEADER_ALLOWANCE > limit]
        if not too_big:
            return rows
        async with self.db.transaction() as session:
            for row in too_big:
                reason = f"payload of {len(row.payload)} bytes exceeds the server's {limit}"
                await session.execute(
                    update(outbox)
                    .where(outbox.c.seq == row.seq)
                    .values(attempts=PARKED, last_error=reason)
                )
                EVENTS_PARKED.inc()
                log.error(
                    "outbox.event_parked", event_id=row.event_id, subject=row.subject, reason=reason
                )
        parked = {row.seq for row in too_big}
        return [row for row in rows if row.seq not in parked]

    async def _lead(self) -> bool:
        """True while this relay holds its database's relay lock (always, on SQLite)."""
        if self.db.is_sqlite:
            return True
        if self._leadership is not None:
            if not self._leadership.closed and not self._leadership.invalidated:
                return True
            await self._resign()
        connection = await self.db.engine.connect()
        try:
            got = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:id)"), {"id": _RELAY_LOCK_ID}
            )
            await connection.commit()  # the lock is the session's: no transaction left open
        except Exception:
            await connection.close()
            raise
        if not got:
            await connection.close()
            return False
        self._leadership = connection
        await self._listen(connection)
        return True

    async def _listen(self, connection: AsyncConnection) -> None:
        """Commits in other processes (workers, replicas) wake the leader as its own do."""

        def woken(*_args: Any) -> None:
            self._wake.set()

        raw = (await connection.get_raw_connection()).driver_connection
        await raw.add_listener(WAKE, woken)
        connection.info[WAKE] = woken

    async def _resign(self) -> None:
        connection, self._leadership = self._leadership, None
        if connection is None:
            return
        try:
            woken = connection.info.pop(WAKE, None)
            if woken is not None:
                raw = (await connection.get_raw_connection()).driver_connection
                await raw.remove_listener(WAKE, woken)
            # A pooled connection outlives close(): give the lock back explicitly.
            await connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _RELAY_LOCK_ID})
            await connection.commit()
        except Exception:
            with contextlib.suppress(Exception):
                await connection.invalidate()  # a dead session's locks died with it
        with contextlib.suppress(Exception):
            await connection.close()
