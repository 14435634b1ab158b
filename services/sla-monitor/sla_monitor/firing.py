"""Firing due clocks: claim, record the alert, stage its events, all in one transaction.

Exactly once: a clock is claimed with FOR UPDATE SKIP LOCKED (PostgreSQL; SQLite has one
writer), its alert row is unique per (policy, entity, cycle, step), and the outbox events are
written in the same transaction as that row and the clock's advance. A crash before commit
leaves the clock due (it fires after restart); after commit, the relay publishes once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, select

from salesrail.db.bulk import insert_columns, is_postgresql, one_of, update_rows
from salesrail.events.catalog import (
    NotifyRequested,
    Recipient,
    SlaAlert,
    SlaEscalated,
    SlaFollowUpRequested,
    SlaWarning,
)
from salesrail.faults import crash_point
from salesrail.unit_of_work import UnitOfWork
from sla_monitor import rules
from sla_monitor.models import alerts, clocks, entities
from sla_monitor.policybook import PolicyBook
from sla_monitor.service import CLOCK_FIELDS, clock_of, of_entities, open_lead_owners

log = structlog.get_logger(__name__)

_ALERT_IDS = uuid.UUID("5f0c1d2e-6a8b-4c3d-9e1f-2a3b4c5d6e7f")


def alert_id(clock: rules.Clock, kind: str) -> str:
    """Stable per (policy, entity, cycle, step): a re-fire would carry the same id."""
    key = f"{clock.policy}|{clock.entity_type}|{clock.entity_id}|{clock.cycle}|{kind}"
    return str(uuid.uuid5(_ALERT_IDS, key))


async def earliest_due(uow: UnitOfWork) -> datetime | None:
    return await uow.session.scalar(select(func.min(clocks.c.next_fire_at)))


async def fire_due(uow: UnitOfWork, book: PolicyBook, *, limit: int) -> int:
    """Fire up to `limit` due steps, oldest first; how many clocks were claimed."""
    session = uow.session
    now = uow.now()
    postgres = session.get_bind().dialect.name == "postgresql"
    query = (
        select(clocks)
        .where(clocks.c.next_fire_at <= now)
        .order_by(clocks.c.next_fire_at, clocks.c.id)
        .limit(limit)
    )
    if postgres:
        query = query.with_for_update(skip_locked=True)
    claimed = [clock_of(row) for row in (await session.execute(query)).mappings()]
    if not claimed:
        return 0
    await book.refresh(uow)
    keys = sorted({(c.entity_type, c.entity_id) for c in claimed})
    owners = {
        (r["entity_type"], r["entity_id"]): r
        for r in (
            await session.execute(
                select(entities).where(
                    of_entities(entities, keys, postgresql=is_postgresql(session))
                )
            )
        ).mappings()
    }
    acknowledged = set(
        (
            await session.execute(
                select(alerts.c.clock_id).where(
                    one_of(alerts.c.clock_id, [c.id for c in claimed], postgresql=postgres),
                    alerts.c.kind == "alert",
                    alerts.c.state == "acknowledged",
                )
            )
        ).scalars()
    )
    # Clocks that exist only while their rep owns an open lead: does the rep, now?
    open_owners = await open_lead_owners(
        session,
        [
            c.entity_id
            for c in claimed
            if book.version(c.policy_version).policies[c.policy].applies_while == "owns_open_leads"
        ],
    )
    records: list[dict[str, Any]] = []
    successors: list[rules.Clock] = []
    for clock in claimed:
        policy_set = book.version(clock.policy_version)
        policy = policy_set.policies[clock.policy]
        calendar = policy_set.calendars[clock.policy]
        firing = rules.fire(
            clock,
            policy,
            calendar,
            acknowledged=clock.id in acknowledged,
            applies=policy.applies_while is None or clock.entity_id in open_owners,
        )
        if firing is not None:
            records.append(_alert_row(clock, firing, owners.get(clock.key), now))
        successor = _next_day(clock, book)
        if successor is not None:
            successors.append(successor)
    inserted = await _insert_alerts(session, records)
    for record in records:
        if record["id"] in inserted:
            await _publish(uow, record)
    await update_rows(
        session,
        clocks,
        "id",
        [
            {
                "id": c.id,
                "state": c.state,
                "next_step": c.next_step,
                "next_fire_at": c.next_fire_at,
                "stopped_at": c.stopped_at,
                "is_current": c.is_current,
            }
            for c in claimed
        ],
    )
    await _insert_clocks(session, successors, now)
    crash_point("sla.before_fire_commit")
    log.info("clocks.fired", claimed=len(claimed), alerts=len(inserted))
    return len(claimed)


def _next_day(clock: rules.Clock, book: PolicyBook) -> rules.Clock | None:
    """A daily clock that fired its last step is followed by the next working day's, under
    the current policy version (none if that version no longer has the policy)."""
    current = book.current
    if current is None or clock.policy not in current.policies:
        return None
    policy = current.policies[clock.policy]
    started_under = book.version(clock.policy_version).policies[clock.policy]
    if policy.deadline is None or started_under.deadline is None:
        return None  # a version turned the policy daily (or back): its next event starts it
    return rules.next_day(clock, policy, current.calendars[clock.policy], version=current.version)


async def _insert_clocks(session: Any, new: list[rules.Clock], now: datetime) -> None:
    """Next days' clocks; one already there (an update of that rep made it meanwhile, in a
    transaction that committed first) is left as it is."""
    columns = {name: [getattr(c, name) for c in new] for name in CLOCK_FIELDS}
    await insert_columns(
        session, clocks, {**columns, "created_at": [now] * len(new)}, skip_existing=True
    )


def _alert_row(
    clock: rules.Clock, firing: rules.Firing, entity: Any, now: datetime
) -> dict[str, Any]:
    owner = clock.entity_id if clock.entity_type == "rep" else (entity or {}).get("owner_id")
    team = (entity or {}).get("team_id")
    recipients = _recipients(firing.notify, owner=owner, team=team)
    return {
        "id": alert_id(clock, firing.kind),
        "policy": clock.policy,
        "policy_version": clock.policy_version,
        "kind": firing.kind,
        "entity_type": clock.entity_type,
        "entity_id": clock.entity_id,
        "cycle": clock.cycle,
        "clock_id": clock.id,
        "lead_id": clock.lead_id,
        "ticket_id": clock.entity_id if clock.entity_type == "ticket" else None,
        "owner_id": owner,
        "severity": firing.severity,
        "notify": [f"{r.kind}:{r.id}" for r in recipients],
        "due_at": clock.due_at,
        "point_at": firing.point_at,
        "fired_at": now,
        "state": "open",
        # Not columns: what _publish needs to say.
        "_firing": firing,
        "_recipients": recipients,
        "_breach_id": alert_id(clock, "alert") if firing.kind.startswith("escalation") else None,
    }


def _recipients(names: tuple[str, ...], *, owner: str | None, team: str | None) -> list[Recipient]:
    """'owner', 'supervisor', 'team', 'role:x', 'rep:x', 'team:x' -> recipients; the owner's
    and their supervisor are left out while the entity has no owner."""
    found: list[Recipient] = []
    for name in names:
        if name == "owner":
            found += [Recipient(kind="rep", id=owner)] if owner else []
        elif name == "supervisor":
            found += [Recipient(kind="supervisor_of", id=owner)] if owner else []
        elif name == "team":
            found += [Recipient(kind="team", id=team)] if team else []
        else:
            kind, _, ident = name.partition(":")
            found.append(Recipient(kind=kind, id=ident))
    return found


async def _insert_alerts(session: Any, records: list[dict[str, Any]]) -> set[str]:
    if not records:
        return set()
    names = [k for k in records[0] if not k.startswith("_")]
    columns = {name: [r[name] for r in records] for name in names}
    return set(await insert_columns(session, alerts, columns, skip_existing=True, returning="id"))


async def _publish(uow: UnitOfWork, record: dict[str, Any]) -> None:
    firing: rules.Firing = record["_firing"]
    rule = record["policy"]
    signal = dict(
        rule=rule,
        lead_id=record["lead_id"],
        ticket_id=record["ticket_id"],
        owner_id=record["owner_id"],
        due_at=record["due_at"],
        fired_at=record["fired_at"],
        notify=record["notify"],
        severity=record["severity"],
        alert_id=record["id"],
        entity_type=record["entity_type"],
        entity_id=record["entity_id"],
        cycle=record["cycle"],
        policy_version=record["policy_version"],
    )
    if firing.publish == "warning":
        await uow.publish(SlaWarning(**signal), event_type=f"sla.warning.{rule}")
    elif firing.publish == "alert":
        await uow.publish(SlaAlert(**signal), event_type=f"sla.alert.{rule}")
    elif firing.publish == "escalation":
        level = int(firing.kind.rsplit("_", 1)[1])
        await uow.publish(
            SlaEscalated(**signal, level=level, breach_alert_id=record["_breach_id"]),
            event_type=f"sla.escalation.{rule}",
        )
    else:
        assert firing.group is not None
        await uow.publish(
            SlaFollowUpRequested(
                alert_id=record["id"],
                breach_alert_id=record["_breach_id"],
                rule=rule,
                group=firing.group,
                lead_id=record["lead_id"],
                owner_id=record["owner_id"],
                reason=f"{rule} breached at {record['due_at']:%Y-%m-%d %H:%M} UTC, unresolved",
                requested_at=record["fired_at"],
            )
        )
    recipients: list[Recipient] = record["_recipients"]
    if recipients:
        await uow.publish(
            NotifyRequested(
                recipients=recipients,
                title=_title(firing, rule),
                text=_text(record),
                severity=record["severity"],
                lead_id=record["lead_id"],
            )
        )


def _title(firing: rules.Firing, rule: str) -> str:
    what = {
        "warning": "SLA warning",
        "alert": "SLA breached",
        "escalation": "SLA breach escalated",
        "ops_followup": "SLA follow-up requested",
    }[firing.publish]
    return f"{what}: {rule}"


def _text(record: dict[str, Any]) -> str:
    subject = (
        f"ticket {record['ticket_id']}"
        if record["ticket_id"]
        else f"lead {record['lead_id']}"
        if record["lead_id"]
        else f"{record['entity_type']} {record['entity_id']}"
    )
    return f"{record['policy']} on {subject}: due {record['due_at']:%Y-%m-%d %H:%M} UTC."
