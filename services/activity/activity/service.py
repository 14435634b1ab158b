"""Use cases of activity: each runs in one unit of work (state + outgoing events)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import structlog

from activity import rules
from activity.models import Lead
from salesrail.events.catalog import LeadReceived
from salesrail.unit_of_work import UnitOfWork

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]

log = structlog.get_logger(__name__)


async def record_lead(*, uow: UnitOfWork, received: LeadReceived) -> None:
    """Start following a new lead; a second announcement of a known lead changes nothing."""
    if await uow.session.get(Lead, received.lead_id) is not None:
        # Re-announced under a new event id: keep what later events already taught us.
        log.info("lead.already_known", lead_id=received.lead_id)
        return
    uow.session.add(
        Lead(
            lead_id=received.lead_id,
            company_name=received.company_name,
            city=received.city,
            category=received.category,
            received_at=received.received_at,
            owner_id=None,
            stage=rules.INITIAL_STAGE,
            updated_at=uow.now(),
        )
    )


async def set_owner(*, uow: UnitOfWork, lead_id: str, owner_id: str | None) -> None:
    """Record who owns a lead now (None: back in the public pool)."""
    lead = await uow.session.get(Lead, lead_id)
    if lead is None:
        # Not announced to us (e.g. older than our stream's retention): nothing to follow.
        log.warning("lead.unknown_owner_change", lead_id=lead_id, owner_id=owner_id)
        return
    lead.owner_id = owner_id
    lead.updated_at = uow.now()


async def get_stage(*, unit_of_work: UnitOfWorkFactory, lead_id: str) -> Lead | None:
    async with unit_of_work() as uow:
        return await uow.session.get(Lead, lead_id)
