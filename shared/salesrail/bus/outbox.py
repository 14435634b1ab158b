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
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from nats.js import JetStreamContext
from prometheus_client import Counter
from pydantic_core import to_json
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

# PostgreSQL: the events of `Outbox.take_staged_json`, bound as `:events`, written into the
# outbox by a caller's own statement (e.g. a CTE of its batch's writes). The payload (JSON,
# UTF-8 bytes) travels as text.
OUTBOX_FROM_JSON = (
    "INSERT INTO outbox (event_id, subject, payload, created_at, attempts) "
    "SELECT event_id, subject, convert_to(payload, 'UTF8'), created_at, attempts "
    "FROM json_to_recordset(CAST(:events AS json)) AS given(event_id text, subject text, "
    "payload text, created_at timestamptz, attempts integer)"
)

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

    def take_staged(self, session: AsyncSession) -> list[dict[str, Any]]:
        """The events staged in this transaction, for a caller that writes them into the outbox
        itself, in a statement of its own (one round trip fewer), in the order given. At commit
        they are handed to the relay as if `write_staged` had written them. None are taken when
        a commit must notify the relay of another process: `write_staged` does that."""
        if self.wake_others():
            return []
        rows: list[dict[str, Any]] = session.info.pop(_QUEUE, None) or []
        if rows:
            session.info[_STAGED] = rows
        return rows

    def take_staged_json(self, session: AsyncSession) -> str:
        """`take_staged` as the JSON document OUTBOX_FROM_JSON reads ("[]" when none)."""
        rows = self.take_staged(session)
        return to_json([{**row, "payload": row["payload"].decode()} for row in rows]).decode()

    async def write_staged(self, session: AsyncSession) -> None:
        """One INSERT for every event staged in this transaction, in the order staged."""
        rows = session.info.pop(_QUEUE, None)
        if rows:
            await insert_rows(session, outbox, rows)
            session.info[_STAGED] = rows  # handed to this process's relay at commit
            if is_postgresql(session) and self.wake_others():
                # Delivered at commit, to the relay that leads (another process).
                await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WAKE})


@dataclass(frozen=True, slots=True)
class _Event:
    """An outbox row as the relay publishes it."""

    event_id: str
    subject: str
    payload: bytes


class OutboxRelay:
    """Publishes committed outbox rows; wakes on commit, polls as a safety net.

    Events come two ways:
    - Committed in this process while the relay leads and has caught up with the table: the
      commit hands them over (`_after_commit`) and they are published at once, in commit
      order, without being read back.
    - Read from the table in `seq` order: the backlog when the relay takes the lead or after
      a failure, events other processes committed (they notify), and what the poll finds.

    Publishing does not wait for the server's acknowledgements. A batch's acknowledgements are
    collected as they arrive and a second task (the marker) marks acknowledged events sent in
    its own transactions (at most one every `mark_delay_s` under load), so neither the
    server's fsync nor an UPDATE holds back the next event. A batch refused, or not
    acknowledged within `publish_timeout_s`, is a failure: the relay forgets what it holds and
    starts again from the table, which still has every event not marked sent (JetStream drops
    the copies of those it had stored).
    """

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
        mark_delay_s: float = 0.1,
    ) -> None:
        self.db = db
        self.js = js
        self.clock = clock
        self.batch_size = batch_size
        self.max_payload = max_payload
        self.poll_interval_s = poll_interval_s
        self.publish_timeout_s = publish_timeout_s
        self.mark_delay_s = mark_delay_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._marker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._leadership: AsyncConnection | None = None
        self._leads = False
        # Committed in this process and handed over at commit, not yet published.
        self._handed: deque[_Event] = deque()
        # While True, commits are handed over: nothing unsent in the table is older.
        self._caught_up = False
        # The table may hold unsent events that the relay does not: read it next.
        self._table_due = False
        self._table_read_at = 0.0
        # Published batches awaiting acknowledgement: (deadline, event ids, acknowledgements).
        self._in_flight: deque[tuple[float, list[str], asyncio.Future[Any]]] = deque()
        self._failure: BaseException | None = None
        # Published and not yet marked sent: a table read leaves them out.
        self._unmarked: set[str] = set()
        # Acknowledged, for the marker to mark sent.
        self._acknowledged: list[str] = []
        self._marking = False
        self._to_mark = asyncio.Event()
        self._hurry = asyncio.Event()  # someone waits for the marks (`_settle`)
        self._settled = asyncio.Event()  # nothing in flight, nothing left to mark
        self._settled.set()
        db.on_commit(self._after_commit)

    @property
    def leading(self) -> bool:
        """This relay publishes its database's events (on PostgreSQL: it holds the relay lock)."""
        return self._leads

    def _after_commit(self, session: Session) -> None:
        rows = session.info.pop(_STAGED, None)
        if not rows or self._loop is None:
            return
        if self._caught_up and self._leads:
            self._handed.extend(_Event(r["event_id"], r["subject"], r["payload"]) for r in rows)
        else:
            self._table_due = True
        self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="outbox-relay")
        self._marker = asyncio.create_task(self._mark_acknowledged(), name="outbox-marker")

    async def stop(self) -> None:
        """Publish what is already committed, see it acknowledged and marked, then stop."""
        self._stopping = True
        self._stop_requested.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._marker is not None:
            self._marker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._marker

    async def _run(self) -> None:
        backoff = self.poll_interval_s
        while True:
            try:
                await self.flush()
                if self._stopping:
                    await self._settle()
                backoff = self.poll_interval_s
            except Exception as exc:  # broker or database away: keep the rows, try again later
                log.warning("outbox.relay_failed", error=repr(exc), retry_in_s=backoff)
                await self._resign()
                if self._stopping:  # what is left is published after the next start
                    return
                with contextlib.suppress(TimeoutError):  # commits do not cut the pause short
                    await asyncio.wait_for(self._stop_requested.wait(), timeout=backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if self._stopping:
                await self._resign()
                return
            timeout = self.poll_interval_s
            if self._in_flight:  # back in time to notice an overdue acknowledgement
                overdue_in = self._in_flight[0][0] - time.monotonic()
                timeout = min(timeout, max(overdue_in, 0.0) + 0.01)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            self._wake.clear()

    async def flush(self) -> None:
        """Publish what is due: the table's unsent events when it may hold some this relay
        does not, and what commits handed over.

        No transaction is open while waiting for NATS (SQLite would hold its only write lock).
        On PostgreSQL one relay per database publishes (the leader, by advisory lock), so
        replicas cannot interleave and break the order.
        """
        self._raise_failure()
        if not await self._lead():
            self._start_over()
            return
        while True:
            if time.monotonic() - self._table_read_at >= self.poll_interval_s:
                self._table_due = True  # the safety net, also under a steady stream of commits
            if not self._caught_up or self._table_due:
                # From here on commits are handed over; the read below sees every earlier one.
                self._caught_up, self._table_due = True, False
                await self._publish_table()
            if self._handed:
                count = min(len(self._handed), self.batch_size)
                await self._publish([self._handed.popleft() for _ in range(count)])
            elif not self._table_due:
                return
            self._raise_failure()

    async def _publish_table(self) -> None:
        """Publish the table's unsent events in order, except those published already or
        handed over (published next, in commit order)."""
        while True:
            self._table_read_at = time.monotonic()
            async with self.db.engine.begin() as connection:  # Core: plain rows
                rows = (
                    await connection.execute(
                        select(outbox.c.seq, outbox.c.event_id, outbox.c.subject, outbox.c.payload)
                        .where(outbox.c.sent_at.is_(None), outbox.c.attempts < PARKED)
                        .order_by(outbox.c.seq)
                        .limit(self.batch_size)
                    )
                ).all()
            handed = {event.event_id for event in self._handed}
            due = [r for r in rows if r.event_id not in handed and r.event_id not in self._unmarked]
            due = await self._park_unpublishable(due)
            if due:
                await self._publish([_Event(r.event_id, r.subject, r.payload) for r in due])
                continue
            if len(rows) < self.batch_size:
                return
            if any(row.event_id in handed for row in rows):
                self._table_due = True  # read on once those handed over are published
                return
            await self._settle()  # a batch of published events not marked yet: wait for them

    async def _publish(self, events: list[_Event]) -> None:
        """Send a batch to the server; its acknowledgements come in later (see `_acknowledged`)."""
        limit = self.max_payload()
        fitting = [e for e in events if _fits(e.payload, limit)]
        if len(fitting) < len(events):
            self._table_due = True  # the table path sets it aside (`_park_unpublishable`)
        events = fitting
        if not events:
            return
        crash_point("relay.before_publish")
        ids = [event.event_id for event in events]
        self._unmarked.update(ids)
        self._settled.clear()
        acks = asyncio.gather(
            *[
                await self.js.publish_async(
                    event.subject, event.payload, headers={"Nats-Msg-Id": event.event_id}
                )
                for event in events
            ]
        )
        self._in_flight.append((time.monotonic() + self.publish_timeout_s, ids, acks))
        acks.add_done_callback(self._acknowledged_batch)

    def _acknowledged_batch(self, acks: asyncio.Future[Any]) -> None:
        """Every acknowledgement of a batch is in, or one failed."""
        batch = next((b for b in self._in_flight if b[2] is acks), None)
        if batch is None:
            return  # forgotten by `_start_over`
        self._in_flight.remove(batch)
        ids = batch[1]
        if acks.cancelled():
            self._fail(RuntimeError("acknowledgements cancelled"))
        elif (exc := acks.exception()) is not None:
            self._fail(exc)
        else:
            crash_point("relay.after_publish")
            self._acknowledged.extend(ids)
            self._to_mark.set()
        self._check_settled()

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        self._wake.set()

    def _raise_failure(self) -> None:
        if self._in_flight and self._in_flight[0][0] < time.monotonic():
            self._fail(TimeoutError(f"not acknowledged within {self.publish_timeout_s} s"))
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def _start_over(self) -> None:
        """Forget what is held and in flight; the table has every event not marked sent."""
        self._caught_up = False
        self._handed.clear()
        in_flight = list(self._in_flight)
        self._in_flight.clear()
        for _, _, acks in in_flight:
            acks.cancel()
        # Acknowledged ones are marked soon: only those not acknowledged are to be read again.
        self._unmarked.intersection_update(self._acknowledged)
        self._failure = None
        self._check_settled()

    async def _settle(self) -> None:
        """Until every published event is acknowledged and marked sent; raises on a failure."""
        self._hurry.set()
        try:
            await self._until_settled()
        finally:
            self._hurry.clear()

    async def _until_settled(self) -> None:
        while not self._settled.is_set():
            self._raise_failure()
            timeout = self.publish_timeout_s
            if self._in_flight:
                timeout = max(self._in_flight[0][0] - time.monotonic(), 0.0) + 0.01
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), timeout=timeout)
        self._raise_failure()

    def _check_settled(self) -> None:
        if not self._in_flight and not self._acknowledged and not self._marking:
            self._settled.set()

    async def _mark_acknowledged(self) -> None:
        """The marker: marks sent, in one UPDATE, every event acknowledged since the last."""
        backoff = self.poll_interval_s
        while True:
            self._check_settled()
            await self._to_mark.wait()
            # Acknowledgements keep coming under load: one UPDATE for all of them, a little
            # later (a crash re-sends at most these, and JetStream drops the copies).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), timeout=self.mark_delay_s)
            self._to_mark.clear()
            ids, self._acknowledged = self._acknowledged, []
            if not ids:
                continue
            self._marking = True
            try:
                async with self.db.engine.begin() as connection:
                    postgresql = connection.dialect.name == "postgresql"
                    await connection.execute(
                        update(outbox)
                        .where(one_of(outbox.c.event_id, ids, postgresql=postgresql))
                        .values(sent_at=self.clock.now())
                    )
            except Exception as exc:  # database away: still unsent, marked on a later try
                log.warning("outbox.mark_failed", error=repr(exc), retry_in_s=backoff)
                self._acknowledged[:0] = ids
                self._marking = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                self._to_mark.set()
                continue
            self._marking = False
            backoff = self.poll_interval_s
            self._unmarked.difference_update(ids)

    async def _park_unpublishable(self, rows: list[Any]) -> list[Any]:
        """Set aside events the server would refuse for ever (too large), so they cannot
        block every event after them; they stay in the table with the reason."""
        limit = self.max_payload()
        if not limit:
            return rows
        too_big = [row for row in rows if not _fits(row.payload, limit)]
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
            self._leads = True
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
        self._leads = True
        return True

    async def _listen(self, connection: AsyncConnection) -> None:
        """Commits in other processes (workers, replicas) wake the leader as its own do."""

        def woken(*_args: Any) -> None:
            self._table_due = True
            self._wake.set()

        raw = (await connection.get_raw_connection()).driver_connection
        await raw.add_listener(WAKE, woken)
        connection.info[WAKE] = woken

    async def _resign(self) -> None:
        self._leads = False
        self._start_over()
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


def _fits(payload: bytes, limit: int) -> bool:
    """Whether the server takes a message of this payload (`limit` 0: not known, assume so)."""
    return not limit or len(payload) + _HEADER_ALLOWANCE <= limit
