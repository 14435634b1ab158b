"""HTTP routes of lead-router: translate requests into use cases, nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from lead_router import service
from lead_router.schemas import LeadIn, LeadOut
from salesrail.auth import Principal, Role, require_roles
from salesrail.http.app import runtime_of
from salesrail.http.problems import ProblemError

router = APIRouter(tags=["leads"])

Submitter = Annotated[
    Principal, Depends(require_roles(Role.INTEGRATION, Role.OPS, Role.SUPERVISOR, Role.REP))
]
Reader = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR, Role.OPS, Role.REP))]


@router.post(
    "/leads",
    response_model=LeadOut,
    status_code=201,
    responses={200: {"model": LeadOut, "description": "A replay: the first result, nothing new"}},
    summary="Submit a lead (idempotent)",
)
async def submit_lead(
    lead_in: LeadIn,
    request: Request,
    response: Response,
    caller: Submitter,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> LeadOut:
    intake = await service.receive_lead(
        unit_of_work=runtime_of(request).unit_of_work,
        lead_in=lead_in,
        caller=caller.subject,
        idempotency_key=idempotency_key,
    )
    if not intake.created:
        response.status_code = 200
    return LeadOut.model_validate(intake.lead, from_attributes=True)


@router.get("/leads/{lead_id}", response_model=LeadOut, summary="One lead")
async def read_lead(lead_id: str, request: Request, caller: Reader) -> LeadOut:
    lead = await service.get_lead(unit_of_work=runtime_of(request).unit_of_work, lead_id=lead_id)
    if lead is None or not _may_see(caller, lead.owner_id):
        raise ProblemError(404, f"no lead {lead_id}")
    return LeadOut.model_validate(lead, from_attributes=True)


def _may_see(caller: Principal, owner_id: str | None) -> bool:
    if caller.role is Role.REP:
        return owner_id is not None and owner_id == caller.rep_id
    return True
