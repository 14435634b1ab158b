"""The HTTP shapes of sla-monitor."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sla_monitor.calendars import ALWAYS, Calendar, describe_remaining, remaining
from sla_monitor.models import SlaAlert, SlaClock
from sla_monitor.rules import ClockState


class ClockOut(BaseModel):
    policy: str
    policy_version: int
    entity_type: str
    entity_id: str
    lead_id: str | None
    cycle: int
    state: str = Field(description="running | paused | stopped | breached")
    started_at: datetime
    due_at: datetime
    warn_at: datetime | None
    stopped_at: datetime | None
    remaining_seconds: int | None = Field(
        description="Working time left before due_at on the policy's calendar (negative once "
        "overdue; frozen while paused); null once stopped"
    )
    remaining: str | None = Field(description="The same, in words")

    @classmethod
    def of(cls, clock: SlaClock, *, now: datetime, calendar: Calendar | None) -> ClockOut:
        left: timedelta | None
        if clock.state == ClockState.STOPPED:
            left = None
        elif clock.state == ClockState.PAUSED and clock.remaining_s is not None:
            left = timedelta(seconds=clock.remaining_s)
        else:
            left = remaining(calendar or ALWAYS, now, clock.due_at)
        return cls(
            policy=clock.policy,
            policy_version=clock.policy_version,
            entity_type=clock.entity_type,
            entity_id=clock.entity_id,
            lead_id=clock.lead_id,
            cycle=clock.cycle,
            state=clock.state,
            started_at=clock.started_at,
            due_at=clock.due_at,
            warn_at=clock.warn_at,
            stopped_at=clock.stopped_at,
            remaining_seconds=None if left is None else int(left.total_seconds() // 1),
            remaining=None if left is None else describe_remaining(left),
        )


class ClocksOut(BaseModel):
    clocks: list[ClockOut]


class AlertOut(BaseModel):
    id: str
    rule: str
    kind: str = Field(description="warning | alert | escalation_<n>")
    entity_type: str
    entity_id: str
    cycle: int
    policy_version: int
    lead_id: str | None
    ticket_id: str | None
    owner_id: str | None
    severity: str
    notify: list[str]
    due_at: datetime
    fired_at: datetime
    state: str = Field(description="open | acknowledged | retracted")
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    retracted_at: datetime | None

    @classmethod
    def of(cls, alert: SlaAlert) -> AlertOut:
        fields: dict[str, Any] = {
            name: getattr(alert, name) for name in cls.model_fields if name != "rule"
        }
        return cls(rule=alert.policy, **fields)


class AlertsOut(BaseModel):
    alerts: list[AlertOut]
    next_cursor: str | None = None


class PoliciesIn(BaseModel):
    """The policy document as YAML text (a JSON body, so it travels through any client)."""

    model_config = ConfigDict(extra="forbid")
    yaml: Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)]


class PoliciesOut(BaseModel):
    version: int
    yaml: str
    created_by: str
    created_at: datetime
