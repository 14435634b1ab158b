"""The unit of work a use case runs in: one transaction, its outgoing events, the clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from salesrail.bus.outbox import Outbox
from salesrail.clock import Clock
from salesrail.events.catalog import EventData
from salesrail.events.envelope import Envelope


@dataclass
class UnitOfWork:
    session: AsyncSession
    outbox: Outbox
    clock: Clock
    context: Any = None  # the service's own context (see ServiceRuntime's lifespan)

    async def publish(
        self,
        data: EventData,
        *,
        event_type: str | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        """Stage an event: it is published if, and only if, this transaction commits."""
        return await self.outbox.stage(
            self.session, data, event_type=event_type, occurred_at=occurred_at
        )

    def now(self) -> datetime:
        return self.clock.now()
