"""Bus handlers of activity: keep its view of each lead (owner, stage) from lead events."""

from __future__ import annotations

from activity import service
from salesrail.bus.consumer import EventConsumer
from salesrail.events.catalog import (
    LeadClaimed,
    LeadPooled,
    LeadReassigned,
    LeadReceived,
    LeadRouted,
)
from salesrail.events.envelope import Envelope
from salesrail.events.streams import LEAD_STREAM
from salesrail.unit_of_work import UnitOfWork

leads = EventConsumer(
    name="activity-leads",
    stream=LEAD_STREAM,
    description="activity's view of leads: which exist and who owns them",
)


@leads.on("lead.received")
async def on_lead_received(uow: UnitOfWork, _envelope: Envelope, data: LeadReceived) -> None:
    await service.record_lead(uow=uow, received=data)


@leads.on("lead.routed")
@leads.on("lead.claimed")
@leads.on("lead.reassigned")
async def on_owner_changed(
    uow: UnitOfWork, _envelope: Envelope, data: LeadRouted | LeadClaimed | LeadReassigned
) -> None:
    await service.set_owner(uow=uow, lead_id=data.lead_id, owner_id=data.owner_id)


@leads.on("lead.pooled")
async def on_lead_pooled(uow: UnitOfWork, _envelope: Envelope, data: LeadPooled) -> None:
    await service.set_owner(uow=uow, lead_id=data.lead_id, owner_id=None)


CONSUMERS: tuple[EventConsumer, ...] = (leads,)
