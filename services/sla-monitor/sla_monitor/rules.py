"""Pure decisions of sla-monitor (no I/O): the policies and the arithmetic of deadlines."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class ClockState(StrEnum):
    RUNNING = "running"


@dataclass(frozen=True)
class Policy:
    """A promise with a deadline: `duration` after the clock starts, it is overdue."""

    name: str
    entity_type: str
    duration: timedelta


LEAD = "lead"

# After marketing hands a lead over, sales must make the first follow-up within 48 h.
FIRST_TOUCH_48H = Policy(name="first_touch_48h", entity_type=LEAD, duration=timedelta(hours=48))


def due_at(started_at: datetime, duration: timedelta) -> datetime:
    """When a clock started at `started_at` runs out."""
    return started_at + duration


def remaining_seconds(due: datetime, *, now: datetime) -> int:
    """Whole seconds left before `due`; negative once overdue (rounded down, so a clock a
    fraction of a second past its deadline already reads as overdue)."""
    return math.floor((due - now).total_seconds())
