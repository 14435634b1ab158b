"""Bus handlers of sla-monitor: events that start clocks."""

from __future__ import annotations

from salesrail.bus.consumer import EventConsumer
from salesrail.events.catalog import LeadReceived
from salesrail.events.envelope import Envelope
from salesrail.events.streams import LEAD_STREAM
from salesrail.unit_of_work import UnitOfWork
from sla_monitor import rules, service

# The whole lead stream, not only lead.received: the clocks to come start and stop on
# routing, claims and stage changes too, and one durable consumer keeps their order.
leads = EventConsumer(
    name="sla-monitor-leads",
    stream=LEAD_STREAM,
    description="Starts and stops the SLA clocks of leads",
)


@leads.on("lead.received")
async def start_first_touch_clock(uow: UnitOfWork, _envelope: Envelope, data: LeadReceived) -> None:
    # The clock runs from when the lead really arrived (an import of old leads starts late
    # clocks), not from when this event reached us.
    await service.start_clock(
        uow=uow, policy=rules.FIRST_TOUCH_48H, entity_id=data.lead_id, started_at=data.received_at
    )


CONSUMERS: tuple[EventConsumer, ...] = (leads,)
