"""Bus handlers of metrics: count what happens, per business day."""

from __future__ import annotations

from metrics import service
from salesrail.bus.consumer import EventConsumer
from salesrail.events.catalog import LeadReceived
from salesrail.events.envelope import Envelope
from salesrail.events.streams import LEAD_STREAM
from salesrail.unit_of_work import UnitOfWork

leads = EventConsumer(
    name="metrics-leads",
    stream=LEAD_STREAM,
    description="metrics' lead counts: leads received per business day and source",
)


@leads.on("lead.received")
async def on_lead_received(uow: UnitOfWork, _envelope: Envelope, data: LeadReceived) -> None:
    await service.count_lead(uow=uow, received=data)


CONSUMERS: tuple[EventConsumer, ...] = (leads,)
