"""Which of a batch's events a consumer has not applied before, recorded as applied."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import String, bindparam, func, literal, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from salesrail.bus.tables import processed_events
from salesrail.db.bulk import is_postgresql
from salesrail.db.types import UtcDateTime
from salesrail.events.envelope import Envelope

# The consumer and the time are one value each, not arrays of copies: asyncpg encodes an
# array parameter element by element, and those two arrays were most of this statement's cost.
_RECORD_FRESH = (
    pg_insert(processed_events)
    .from_select(
        ["consumer", "event_id", "processed_at"],
        select(
            bindparam("consumer", type_=String),
            func.unnest(bindparam("event_ids", type_=ARRAY(String))),
            bindparam("now", type_=UtcDateTime),
        ),
    )
    .on_conflict_do_nothing()
    .returning(processed_events.c.event_id)
)


async def already_processed(
    session: AsyncSession, consumer: str, event_ids: Collection[str]
) -> set[str]:
    """The ids among `event_ids` recorded for `consumer`, without recording anything.

    On PostgreSQL each id is looked up by a LATERAL subquery with LIMIT 1, which the planner
    cannot flatten into a join: a primary-key probe per id whatever the statistics say. As a
    plain join (or `= ANY`) it hashed the consumer's whole history instead (20 ms a batch at
    50 k rows, growing with the table).
    """
    if not event_ids:
        return set()
    if not is_postgresql(session):
        query = select(processed_events.c.event_id).where(
            processed_events.c.consumer == consumer,
            processed_events.c.event_id.in_(list(event_ids)),
        )
        return set(await session.scalars(query))
    ids = (
        func.unnest(bindparam("event_ids", list(event_ids), type_=ARRAY(String)))
        .table_valued("event_id")
        .render_derived(name="ids")
    )
    probe = (
        select(literal(1))
        .where(processed_events.c.consumer == consumer)
        .where(processed_events.c.event_id == ids.c.event_id)
        .limit(1)
        .lateral("probe")
    )
    return set(await session.scalars(select(ids.c.event_id).join(probe, true())))


async def record_fresh(
    session: AsyncSession, consumer: str, envelopes: Sequence[Envelope], *, now: datetime
) -> list[Envelope]:
    """The events `consumer` has not applied before, in order (a copy within the batch once),
    recorded as applied in this same transaction.

    On PostgreSQL one INSERT … ON CONFLICT DO NOTHING RETURNING: each id is one primary-key
    probe by construction. A separate "which are stored?" SELECT let the planner hash-join
    the consumer's whole history against the batch (20 ms a batch at 50 k rows, growing with
    the table), and a replica applying the same event meanwhile made the later INSERT fail;
    here the second transaction waits for the first and then skips the event.
    """
    unique = {e.id: e for e in reversed(envelopes)}  # the first copy of each id
    if not unique:
        return []
    ids = [e.id for e in envelopes if unique.get(e.id) is e]
    if is_postgresql(session):
        stored = await session.scalars(
            _RECORD_FRESH, {"consumer": consumer, "event_ids": ids, "now": now}
        )
        fresh = set(stored)
    else:
        fresh = set(ids) - await already_processed(session, consumer, ids)
        if fresh:
            rows = [{"consumer": consumer, "event_id": i, "processed_at": now} for i in fresh]
            await session.execute(processed_events.insert(), rows)
    return [unique[i] for i in ids if i in fresh]
