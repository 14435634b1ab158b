"""Use cases of collab: each runs in one unit of work (state + outgoing events)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from collab import publishers, rules
from collab.models import Ticket
from collab.schemas import TicketIn
from salesrail.unit_of_work import UnitOfWork

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


async def open_ticket(
    *, unit_of_work: UnitOfWorkFactory, ticket_in: TicketIn, requested_by: str
) -> Ticket:
    """Open a ticket in its assignee role's queue and announce it (only if it is stored)."""
    async with unit_of_work() as uow:
        ticket = Ticket(
            id=str(uuid.uuid4()),
            **ticket_in.model_dump(mode="json"),
            status=rules.TicketStatus.OPEN.value,
            assignee_role=rules.assignee_role_for(ticket_in.kind).value,
            requested_by=requested_by,
            opened_at=uow.now(),
        )
        uow.session.add(ticket)
        await uow.session.flush()
        await uow.publish(publishers.ticket_opened(ticket))
        return ticket


async def get_ticket(*, unit_of_work: UnitOfWorkFactory, ticket_id: str) -> Ticket | None:
    async with unit_of_work() as uow:
        return await uow.session.get(Ticket, ticket_id)
