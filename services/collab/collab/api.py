"""HTTP routes of collab: translate requests into use cases, nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from collab import rules, service
from collab.schemas import TicketIn, TicketOut
from salesrail.auth import CurrentPrincipal, Principal, Role, require_roles
from salesrail.http.app import runtime_of
from salesrail.http.problems import ProblemError

router = APIRouter(tags=["tickets"])

Requester = Annotated[Principal, Depends(require_roles(Role.REP, Role.SUPERVISOR))]


@router.post("/tickets", response_model=TicketOut, status_code=201, summary="Open a ticket")
async def open_ticket(
    ticket_in: TicketIn, request: Request, response: Response, caller: Requester
) -> TicketOut:
    ticket = await service.open_ticket(
        unit_of_work=runtime_of(request).unit_of_work,
        ticket_in=ticket_in,
        requested_by=caller.subject,
    )
    response.headers["Location"] = f"/v1/tickets/{ticket.id}"
    return TicketOut.model_validate(ticket, from_attributes=True)


@router.get("/tickets/{ticket_id}", response_model=TicketOut, summary="One ticket")
async def read_ticket(ticket_id: str, request: Request, caller: CurrentPrincipal) -> TicketOut:
    ticket = await service.get_ticket(
        unit_of_work=runtime_of(request).unit_of_work, ticket_id=ticket_id
    )
    # Not found and not yours look the same: a ticket's existence is not for everyone.
    if ticket is None or not rules.may_read(
        caller, requested_by=ticket.requested_by, assignee_role=ticket.assignee_role
    ):
        raise ProblemError(404, f"no ticket {ticket_id}")
    return TicketOut.model_validate(ticket, from_attributes=True)
