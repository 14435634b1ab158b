"""The HTTP shapes of sla-monitor."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from sla_monitor import rules
from sla_monitor.models import SlaClock


class ClockOut(BaseModel):
    policy: str
    entity_type: str
    entity_id: str
    cycle: int
    started_at: datetime
    due_at: datetime
    state: str
    remaining_seconds: int = Field(
        description="Seconds left before due_at at the time of the answer; negative once overdue"
    )

    @classmethod
    def of(cls, clock: SlaClock, *, now: datetime) -> ClockOut:
        return cls(
            policy=clock.policy,
            entity_type=clock.entity_type,
            entity_id=clock.entity_id,
            cycle=clock.cycle,
            started_at=clock.started_at,
            due_at=clock.due_at,
            state=clock.state,
            remaining_seconds=rules.remaining_seconds(clock.due_at, now=now),
        )


class ClocksOut(BaseModel):
    clocks: list[ClockOut]
