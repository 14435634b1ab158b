"""HTTP routes of metrics: translate requests into use cases, nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from metrics import service
from metrics.schemas import IsoDay, LeadIntakeOut
from salesrail.auth import Principal, Role, require_roles
from salesrail.http.app import runtime_of

router = APIRouter(tags=["kpis"])

Viewer = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR, Role.OPS))]


@router.get("/kpis/lead-intake", response_model=LeadIntakeOut, summary="Leads received per day")
async def read_lead_intake(
    request: Request,
    _caller: Viewer,
    from_: Annotated[IsoDay, Query(alias="from", description="First day, YYYY-MM-DD")],
    to: Annotated[IsoDay, Query(description="Last day (included), YYYY-MM-DD")],
) -> LeadIntakeOut:
    return await service.lead_intake(
        unit_of_work=runtime_of(request).unit_of_work, start=from_, end=to
    )
