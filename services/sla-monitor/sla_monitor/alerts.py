"""Use cases on fired alerts: list them (cursor pages) and acknowledge one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from salesrail.auth import Principal, Role
from salesrail.events.catalog import SlaAlertAcknowledged
from salesrail.http.cursors import newest_first
from salesrail.http.problems import ProblemError
from salesrail.unit_of_work import UnitOfWork
from sla_monitor.models import SlaAlert

# Roles that see every alert; a rep sees the alerts of what they own.
SEES_ALL = {Role.ADMIN, Role.OPS, Role.SUPERVISOR, Role.INTEGRATION}


async def list_alerts(
    uow: UnitOfWork,
    caller: Principal,
    *,
    rule: str | None,
    lead_id: str | None,
    owner_id: str | None,
    state: str | None,
    since: datetime | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[SlaAlert], str | None]:
    """Newest first; `cursor` continues after the last alert of the previous page."""
    query = select(SlaAlert)
    if caller.role not in SEES_ALL:
        if caller.role is not Role.REP or not caller.rep_id:
            return [], None
        query = query.where(SlaAlert.owner_id == caller.rep_id)
    if rule is not None:
        query = query.where(SlaAlert.policy == rule)
    if lead_id is not None:
        query = query.where(SlaAlert.lead_id == lead_id)
    if owner_id is not None:
        query = query.where(SlaAlert.owner_id == owner_id)
    if state is not None:
        query = query.where(SlaAlert.state == state)
    if since is not None:
        query = query.where(SlaAlert.fired_at >= since)
    return await newest_first(
        uow.session, query, at=SlaAlert.fired_at, id=SlaAlert.id, cursor=cursor, limit=limit
    )


async def acknowledge(uow: UnitOfWork, caller: Principal, alert_id: str) -> SlaAlert:
    """Mark an open alert acknowledged (idempotent); escalations that wait for an
    acknowledgement no longer fire. A rep may acknowledge their own alerts only."""
    alert = await uow.session.get(SlaAlert, alert_id, with_for_update=True)
    if alert is None or not _may_see(caller, alert):
        raise ProblemError(404, f"no alert {alert_id}")
    if alert.state == "retracted":
        raise ProblemError(
            409, f"alert {alert_id} was retracted", type="urn:salesrail:problem:alert-retracted"
        )
    if alert.state == "acknowledged":
        return alert
    now = uow.now()
    await uow.session.execute(
        update(SlaAlert)
        .where(SlaAlert.id == alert_id)
        .values(state="acknowledged", acknowledged_by=caller.subject, acknowledged_at=now)
    )
    await uow.session.refresh(alert)
    await uow.publish(
        SlaAlertAcknowledged(
            alert_id=alert.id,
            rule=alert.policy,
            lead_id=alert.lead_id,
            ticket_id=alert.ticket_id,
            owner_id=alert.owner_id,
            by=caller.subject,
            acknowledged_at=now,
        )
    )
    return alert


def _may_see(caller: Principal, alert: SlaAlert) -> bool:
    if caller.role in SEES_ALL:
        return True
    return caller.role is Role.REP and caller.rep_id is not None and alert.owner_id == caller.rep_id
