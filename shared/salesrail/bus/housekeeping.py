"""Trims the plumbing tables: sent outbox rows and old processed-event records."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from salesrail.bus.tables import outbox, processed_events
from salesrail.clock import Clock
from salesrail.db.database import Database
from salesrail.periodic import Periodic


class Housekeeping:
    """Processed-event records must outlive any redelivery of their event (retries, an
    unacknowledged batch coming back), so they are kept for days, not minutes."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        outbox_retention_s: float,
        processed_retention_s: float,
        interval_s: float = 600.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.outbox_retention = timedelta(seconds=outbox_retention_s)
        self.processed_retention = timedelta(seconds=processed_retention_s)
        self.interval_s = interval_s
        self._periodic = Periodic("housekeeping", self.purge, interval_s=interval_s)

    async def purge(self) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            await session.execute(
                delete(outbox).where(outbox.c.sent_at < now - self.outbox_retention)
            )
            await session.execute(
                delete(processed_events).where(
                    processed_events.c.processed_at < now - self.processed_retention
                )
            )

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
