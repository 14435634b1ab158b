"""Which of a batch's events a consumer has already applied."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import String, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from salesrail.bus.tables import processed_events
from salesrail.db.bulk import copy_columns
from salesrail.events.envelope import Envelope


async def already_processed(
    session: AsyncSession, consumer: str, event_ids: Collection[str]
) -> set[str]:
    """The ids among `event_ids` recorded for `consumer`.

    On PostgreSQL the ids are joined as an array, so each is one primary-key probe whatever the
    statistics say: with `event_id IN (<500 ids>)` on a table grown since its last ANALYZE the
    planner filtered every row of the consumer against the whole list (0.4 s a batch at 30 k
    rows, against 5 ms).
    """
    if not event_ids:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        ids = (
            func.unnest(bindparam("event_ids", list(event_ids), type_=ARRAY(String)))
            .table_valued("event_id")
            .render_derived(name="ids")
        )
        query = select(processed_events.c.event_id).join(
            ids,
            (processed_events.c.consumer == consumer)
            & (processed_events.c.event_id == ids.c.event_id),
        )
    else:
        query = select(processed_events.c.event_id).where(
            processed_events.c.consumer == consumer,
            processed_events.c.event_id.in_(list(event_ids)),
        )
    return set((await session.execute(query)).scalars())


async def record_fresh(
    session: AsyncSession, consumer: str, envelopes: Sequence[Envelope], *, now: datetime
) -> list[Envelope]:
    """The events `consumer` has not applied before, in order (a copy within the batch once),
    recorded as applied in this same transaction: two statements whatever the batch size."""
    seen = await already_processed(session, consumer, {e.id for e in envelopes})
    fresh: dict[str, Envelope] = {}
    for envelope in envelopes:
        if envelope.id not in seen:
            fresh.setdefault(envelope.id, envelope)
    if fresh:
        ids = list(fresh)
        columns = {"consumer": [consumer] * len(ids), "event_id": ids}
        await copy_columns(session, processed_events, {**columns, "processed_at": [now] * len(ids)})
    return list(fresh.values())
