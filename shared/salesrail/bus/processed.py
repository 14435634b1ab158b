"""Which of a batch's events a consumer has already applied."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import String, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from salesrail.bus.tables import processed_events


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
