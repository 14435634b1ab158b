"""HTTP routes of sla-monitor: translate requests into use cases, nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from salesrail.auth import Principal, Role, require_roles
from salesrail.http.app import runtime_of
from sla_monitor import rules, service
from sla_monitor.schemas import ClockOut, ClocksOut

router = APIRouter(tags=["clocks"])

Reader = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR, Role.OPS, Role.INTEGRATION))]


@router.get("/clocks", response_model=ClocksOut, summary="The SLA clocks of one lead")
async def list_lead_clocks(
    request: Request,
    _caller: Reader,
    lead_id: Annotated[str, Query(min_length=1, max_length=128)],
) -> ClocksOut:
    runtime = runtime_of(request)
    clocks = await service.list_clocks(
        unit_of_work=runtime.unit_of_work, entity_type=rules.LEAD, entity_id=lead_id
    )
    now = runtime.clock.now()
    return ClocksOut(clocks=[ClockOut.of(clock, now=now) for clock in clocks])
