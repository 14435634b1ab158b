"""HTTP routes of activity: translate requests into use cases, nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from activity import rules, service
from activity.schemas import LeadStageOut
from salesrail.auth import Principal, Role, require_roles
from salesrail.http.app import runtime_of
from salesrail.http.problems import ProblemError

router = APIRouter(tags=["stages"])

Reader = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.REP, Role.SUPERVISOR, Role.OPS, Role.PRESALES, Role.AFTER_SALES, Role.FINANCE
        )
    ),
]


@router.get("/leads/{lead_id}/stage", response_model=LeadStageOut, summary="A lead's stage")
async def read_stage(lead_id: str, request: Request, caller: Reader) -> LeadStageOut:
    lead = await service.get_stage(unit_of_work=runtime_of(request).unit_of_work, lead_id=lead_id)
    if lead is None or not rules.may_see(caller, lead.owner_id):
        raise ProblemError(404, f"no lead {lead_id}")
    return LeadStageOut.model_validate(lead, from_attributes=True)
