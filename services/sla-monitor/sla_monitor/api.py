"""HTTP routes of sla-monitor: translate requests into use cases, nothing more."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import select

from salesrail.auth import Principal, Role, require_roles
from salesrail.http.app import runtime_of
from salesrail.http.problems import ProblemError
from sla_monitor import alerts, service
from sla_monitor.context import SlaContext
from sla_monitor.models import SlaEntity
from sla_monitor.policies import PoliciesInvalid
from sla_monitor.schemas import (
    AlertOut,
    AlertsOut,
    ClockOut,
    ClocksOut,
    PoliciesIn,
    PoliciesOut,
)

router = APIRouter()

Reader = Annotated[
    Principal,
    Depends(require_roles(Role.REP, Role.SUPERVISOR, Role.OPS, Role.INTEGRATION)),
]
PolicyKeeper = Annotated[Principal, Depends(require_roles(Role.OPS))]


def _context(request: Request) -> SlaContext:
    return runtime_of(request).context  # type: ignore[no-any-return]


# --- clocks ---------------------------------------------------------------------------------


@router.get(
    "/clocks", response_model=ClocksOut, summary="The SLA clocks of one lead", tags=["clocks"]
)
async def list_lead_clocks(
    request: Request,
    caller: Reader,
    lead_id: Annotated[str, Query(min_length=1, max_length=128)],
) -> ClocksOut:
    runtime = runtime_of(request)
    if caller.role is Role.REP:
        async with runtime.unit_of_work() as uow:
            owner = await uow.session.scalar(
                select(SlaEntity.owner_id).where(
                    SlaEntity.entity_type == "lead", SlaEntity.entity_id == lead_id
                )
            )
        if owner is None or owner != caller.rep_id:
            raise ProblemError(403, "a rep sees the clocks of their own leads only")
    clocks = await service.list_clocks(unit_of_work=runtime.unit_of_work, lead_id=lead_id)
    book = _context(request).book
    async with runtime.unit_of_work() as uow:
        await book.refresh(uow)  # a version another replica stored
    now = runtime.clock.now()
    return ClocksOut(
        clocks=[
            ClockOut.of(
                clock,
                now=now,
                calendar=book.version(clock.policy_version).calendars.get(clock.policy),
            )
            for clock in clocks
        ]
    )


# --- alerts ---------------------------------------------------------------------------------


@router.get(
    "/alerts", response_model=AlertsOut, summary="Fired alerts, newest first", tags=["alerts"]
)
async def list_alerts(
    request: Request,
    caller: Reader,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    lead_id: Annotated[str | None, Query(max_length=128)] = None,
    owner_id: Annotated[str | None, Query(max_length=128)] = None,
    state: Literal["open", "acknowledged", "retracted"] | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> AlertsOut:
    async with runtime_of(request).unit_of_work() as uow:
        rows, next_cursor = await alerts.list_alerts(
            uow,
            caller,
            rule=rule,
            lead_id=lead_id,
            owner_id=owner_id,
            state=state,
            since=since,
            limit=limit,
            cursor=cursor,
        )
        return AlertsOut(alerts=[AlertOut.of(row) for row in rows], next_cursor=next_cursor)


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AlertOut,
    summary="Acknowledge an alert (its unacknowledged-escalations no longer fire)",
    tags=["alerts"],
)
async def acknowledge_alert(
    request: Request, caller: Reader, alert_id: Annotated[str, Path(max_length=64)]
) -> AlertOut:
    async with runtime_of(request).unit_of_work() as uow:
        alert = await alerts.acknowledge(uow, caller, alert_id)
        return AlertOut.of(alert)


# --- policies -------------------------------------------------------------------------------


def _policies_out(stored: Any) -> PoliciesOut:
    return PoliciesOut(
        version=stored.version,
        yaml=stored.source,
        created_by=stored.created_by,
        created_at=stored.created_at,
    )


@router.get(
    "/policies", response_model=PoliciesOut, summary="The current SLA policies", tags=["policies"]
)
async def read_policies(request: Request, _caller: PolicyKeeper) -> PoliciesOut:
    return _policies_out(await _context(request).book.stored(runtime_of(request).unit_of_work))


@router.put(
    "/policies",
    response_model=PoliciesOut,
    summary="Replace the SLA policies (validated first; a bad document changes nothing)",
    tags=["policies"],
)
async def replace_policies(request: Request, body: PoliciesIn, caller: PolicyKeeper) -> PoliciesOut:
    try:
        stored = await _context(request).book.replace(
            body.yaml, by=caller.subject, unit_of_work=runtime_of(request).unit_of_work
        )
    except PoliciesInvalid as exc:
        raise ProblemError(
            422,
            f"the policies are not valid: {exc}",
            type="urn:salesrail:problem:invalid-policies",
            title="Invalid SLA policies",
            errors=[
                {"policy": p["policy"], "field": p["field"], "message": p["message"]}
                for p in exc.problems
            ],
        ) from exc
    return _policies_out(stored)
