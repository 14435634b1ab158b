"""Bus handlers of activity: keep its view of each lead (owner, team) from lead events.

Events may arrive in any order: each owner change carries the time it happened (the envelope's
`occurred_at`), and only a newer one replaces the owner already recorded.
"""

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
async def on_lead_routed(uow: UnitOfWork, envelope: Envelope, data: LeadRouted) -> None:
    if data.team_id is not None:
        await service.remember_team(
            uow=uow, rep_id=data.owner_id, team_id=data.team_id, seen_at=envelope.occurred_at
        )
    await service.set_owner(
        uow=uow,
        lead_id=data.lead_id,
        owner_id=data.owner_id,
        team_id=data.team_id,
        changed_at=envelope.occurred_at,
    )


@leads.on("lead.claimed")
@leads.on("lead.reassigned")
async def on_owner_changed(
    uow: UnitOfWork, envelope: Envelope, data: LeadClaimed | LeadReassigned
) -> None:
    team_id = data.team_id
    if team_id is None:
        # Sent before these events named the team: the team routing last gave this rep.
        team_id = await service.team_of(uow=uow, rep_id=data.owner_id)
    else:
        await service.remember_team(
            uow=uow, rep_id=data.owner_id, team_id=team_id, seen_at=envelope.occurred_at
        )
    await service.set_owner(
        uow=uow,
        lead_id=data.lead_id,
        owner_id=data.owner_id,
        team_id=team_id,
        changed_at=envelope.occurred_at,
    )


@leads.on("lead.pooled")
async def on_lead_pooled(uow: UnitOfWork, envelope: Envelope, data: LeadPooled) -> None:
    await service.set_owner(
        uow=uow, lead_id=data.lead_id, owner_id=None, team_id=None, changed_at=envelope.occurred_at
    )


CONSUMERS: tuple[EventConsumer, ...] = (leads,)
