"""Pure decisions of sla-monitor (no I/O): how events move clocks, and what a due clock fires.

A clock is one cycle of one policy on one entity. Events move it by their own time (when the
activity happened, not when its event reached us): a stop that happened before the deadline
stops the clock as of then, even if it arrives after the alert went out, and that alert is
then retracted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from sla_monitor.calendars import Calendar
from sla_monitor.policies import Policy


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"  # answered in time (or ended by a restart or a stop after breach)
    BREACHED = "breached"  # ran out; escalations may still be pending


ACTIVE = frozenset({ClockState.RUNNING, ClockState.PAUSED, ClockState.BREACHED})
ZERO = timedelta(0)


@dataclass
class Clock:
    """A clock's row, as the rules see it; `dirty` marks what must be written back."""

    policy: str
    policy_version: int
    entity_type: str
    entity_id: str
    cycle: int
    state: str
    started_at: datetime
    due_at: datetime
    warn_at: datetime | None = None
    next_step: int = 0
    next_fire_at: datetime | None = None
    paused_at: datetime | None = None
    remaining_s: float | None = None  # working time left when paused
    stopped_at: datetime | None = None
    lead_id: str | None = None
    is_current: bool = True
    id: int | None = None
    dirty: bool = field(default=False, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.entity_type, self.entity_id)


@dataclass(frozen=True)
class Retraction:
    """Alerts of a clock that fired at or after `after` were not deserved."""

    clock: Clock
    after: datetime


@dataclass
class Outcome:
    """What one event did to an entity's clock of one policy."""

    new: list[Clock] = field(default_factory=list)
    retractions: list[Retraction] = field(default_factory=list)


def step_times(policy: Policy, calendar: Calendar, clock: Clock) -> list[datetime]:
    """The instant of each of the policy's steps (warning?, alert, escalations...).

    Escalations count working time after the breach; after a daily deadline's cut-off (often
    the end of the working day) they count elapsed time: "1h" after 18:00 is 19:00."""
    times = [clock.warn_at] if policy.warning else []
    times.append(clock.due_at)
    if policy.deadline is not None:
        times += [clock.due_at + e.after for e in policy.escalations_in_order]
    else:
        times += [calendar.add(clock.due_at, e.after) for e in policy.escalations_in_order]
    return [t for t in times if t is not None]


def schedule(policy: Policy, calendar: Calendar, clock: Clock) -> None:
    """Point `next_fire_at` at the clock's next step, or nowhere once all have fired."""
    if clock.state not in (ClockState.RUNNING, ClockState.BREACHED):
        clock.next_fire_at = None
        return
    times = step_times(policy, calendar, clock)
    clock.next_fire_at = times[clock.next_step] if clock.next_step < len(times) else None


def new_clock(
    policy: Policy,
    calendar: Calendar,
    *,
    version: int,
    entity_type: str,
    entity_id: str,
    cycle: int,
    at: datetime,
    lead_id: str | None,
) -> Clock:
    assert policy.duration is not None, "a daily deadline's clocks come from daily_clock"
    clock = Clock(
        policy=policy.name,
        policy_version=version,
        entity_type=entity_type,
        entity_id=entity_id,
        cycle=cycle,
        state=ClockState.RUNNING,
        started_at=at,
        due_at=calendar.add(at, policy.duration),
        warn_at=calendar.add(at, policy.warning.after) if policy.warning else None,
        lead_id=lead_id,
        dirty=True,
    )
    schedule(policy, calendar, clock)
    return clock


def start(
    current: Clock | None, policy: Policy, calendar: Calendar, *, at: datetime, **identity: object
) -> Outcome:
    """A first clock, unless the entity already has one of this policy (in any state)."""
    if current is not None:
        return Outcome()
    return Outcome(new=[new_clock(policy, calendar, cycle=1, at=at, **identity)])  # type: ignore[arg-type]


def restart(
    current: Clock | None, policy: Policy, calendar: Calendar, *, at: datetime, **identity: object
) -> Outcome:
    """End the current cycle as of `at` and start the next one from `at`.

    An event older than the current cycle's start changes nothing (a later one already
    restarted it). If the current cycle was stopped after `at` (the stop arrived first), the
    new cycle is born stopped at that instant.
    """
    if current is None:
        return start(None, policy, calendar, at=at, **identity)
    if at < current.started_at:
        return Outcome()
    outcome = Outcome()
    stopped_later = (
        current.state == ClockState.STOPPED
        and current.stopped_at is not None
        and current.stopped_at > at
    )
    if current.state in ACTIVE:
        outcome.retractions += _end(current, at)
    clock = new_clock(policy, calendar, cycle=current.cycle + 1, at=at, **identity)  # type: ignore[arg-type]
    if stopped_later:
        assert current.stopped_at is not None
        _stop(clock, current.stopped_at)
    outcome.new.append(clock)
    return outcome


def stop(
    current: Clock | None, policy: Policy, calendar: Calendar, *, at: datetime, **identity: object
) -> Outcome:
    """Stop as of `at`. With no clock yet (the stop arrived before the start it answers), a
    policy that runs once per entity (it has `start` triggers) records a stopped first cycle,
    so the late start does not begin a clock already answered."""
    if current is None and not policy.start:
        return Outcome()
    if current is None:
        clock = new_clock(policy, calendar, cycle=1, at=at, **identity)  # type: ignore[arg-type]
        _stop(clock, at)
        return Outcome(new=[clock])
    if current.state not in ACTIVE or at < current.started_at:
        return Outcome()
    return Outcome(retractions=_end(current, at))


def pause(current: Clock | None, policy: Policy, calendar: Calendar, *, at: datetime) -> Outcome:
    """Hold the time left; a clock that already ran out is not paused."""
    if current is None or current.state != ClockState.RUNNING or at < current.started_at:
        return Outcome()
    if at >= current.due_at:
        return Outcome()
    current.remaining_s = calendar.working_time_between(at, current.due_at).total_seconds()
    current.state = ClockState.PAUSED
    current.paused_at = at
    current.dirty = True
    schedule(policy, calendar, current)
    return Outcome()


def resume(current: Clock | None, policy: Policy, calendar: Calendar, *, at: datetime) -> Outcome:
    """Continue with the time left when paused."""
    if current is None or current.state != ClockState.PAUSED:
        return Outcome()
    assert current.paused_at is not None and current.remaining_s is not None
    at = max(at, current.paused_at)
    left = timedelta(seconds=current.remaining_s)
    current.due_at = calendar.add(at, left)
    if policy.warning and current.warn_at is not None:
        before_due = policy.duration - policy.warning.after
        current.warn_at = calendar.add(at, max(ZERO, left - before_due))
    current.state = ClockState.RUNNING
    current.paused_at = None
    current.remaining_s = None
    current.dirty = True
    schedule(policy, calendar, current)
    return Outcome()


# --- daily deadlines ------------------------------------------------------------------------
#
# A policy with `deadline: {daily_at: ...}` has one clock per entity and working day of its
# calendar, due at that wall time. Its cycle is the day itself (20261009 for 9 October 2026),
# so the (policy, entity, cycle) unique keys of clocks and alerts make each day's alert fire
# once, whichever replica or restart gets there. `start` triggers begin the clock of the first
# working day whose cut-off is still ahead; `restart` triggers are the updates that answer a
# day: they end its clock (and any earlier day's still open) and begin the next working day's;
# `stop` triggers end the clock with no next one. A day's clock that has fired all its steps
# is followed by the next working day's (`next_day`).


def day_cycle(day: date) -> int:
    """The cycle number of a daily clock: the day as YYYYMMDD."""
    return day.year * 10_000 + day.month * 100 + day.day


def cycle_day(cycle: int) -> date:
    return date(cycle // 10_000, cycle // 100 % 100, cycle % 100)


def first_day(calendar: Calendar, at: datetime, cutoff_at: time) -> date:
    """The working day whose cut-off is the first one still ahead of `at`."""
    day = calendar.local_date(at)
    if calendar.is_working_day(day) and at < calendar.cutoff(day, cutoff_at):
        return day
    return calendar.next_working_day(day)


def daily_clock(
    policy: Policy,
    calendar: Calendar,
    *,
    day: date,
    at: datetime,
    version: int,
    entity_type: str,
    entity_id: str,
    lead_id: str | None,
) -> Clock:
    """The clock of `day`, counting from `at` or the day's start, due at its cut-off."""
    assert policy.deadline is not None
    clock = Clock(
        policy=policy.name,
        policy_version=version,
        entity_type=entity_type,
        entity_id=entity_id,
        cycle=day_cycle(day),
        state=ClockState.RUNNING,
        started_at=max(at, calendar.cutoff(day, time(0))),
        due_at=calendar.cutoff(day, policy.deadline.daily_at),
        lead_id=lead_id,
        dirty=True,
    )
    schedule(policy, calendar, clock)
    return clock


def daily_start(
    current: Clock | None, policy: Policy, calendar: Calendar, *, at: datetime, **identity: object
) -> Outcome:
    """The clock of the first working day whose cut-off is ahead, unless one is running (or
    breached, its escalations pending). Never a day at or before the current cycle's."""
    if current is not None and current.state in ACTIVE:
        return Outcome()
    assert policy.deadline is not None
    day = first_day(calendar, at, policy.deadline.daily_at)
    if current is not None and day_cycle(day) <= current.cycle:
        day = calendar.next_working_day(cycle_day(current.cycle))
    return Outcome(new=[daily_clock(policy, calendar, day=day, at=at, **identity)])  # type: ignore[arg-type]


def daily_answer(
    current: Clock | None,
    policy: Policy,
    calendar: Calendar,
    *,
    at: datetime,
    next_day: bool,
    earlier: Clock | None = None,
    **identity: object,
) -> Outcome:
    """An update at `at` answers the day it falls on: the current clock (that day's, or an
    earlier day's still waiting for its escalation) ends as of `at`, whatever of it fired for
    a later instant is retracted, and the next working day's clock begins (if `next_day`).

    An update older than the current clock answers a day already over: only `earlier`, that
    day's clock, if it fired all its steps meanwhile (the update arrived late), is ended as of
    `at` and what it fired for a later instant retracted."""
    if current is not None and at < current.started_at:
        if earlier is not None and earlier.state in ACTIVE and at >= earlier.started_at:
            return Outcome(retractions=_end(earlier, at))
        return Outcome()
    if current is not None and current.state in ACTIVE:
        outcome = Outcome(retractions=_end(current, at))
    else:
        outcome = Outcome()
    if next_day:
        assert policy.deadline is not None
        day = calendar.next_working_day(calendar.local_date(at))
        if current is not None and day_cycle(day) <= current.cycle:
            day = calendar.next_working_day(cycle_day(current.cycle))
        outcome.new.append(daily_clock(policy, calendar, day=day, at=at, **identity))  # type: ignore[arg-type]
    return outcome


def next_day(clock: Clock, policy: Policy, calendar: Calendar, *, version: int) -> Clock | None:
    """After a daily clock fired its last step, the next working day's clock (marking this
    one no longer current); None for any other clock."""
    if (
        policy.deadline is None
        or clock.state != ClockState.BREACHED
        or clock.next_fire_at is not None
        or not clock.is_current
    ):
        return None
    day = calendar.next_working_day(cycle_day(clock.cycle))
    successor = daily_clock(
        policy,
        calendar,
        day=day,
        at=calendar.cutoff(day, time(0)),
        version=version,
        entity_type=clock.entity_type,
        entity_id=clock.entity_id,
        lead_id=clock.lead_id,
    )
    clock.is_current = False
    clock.dirty = True
    return successor


def _end(clock: Clock, at: datetime) -> list[Retraction]:
    """Stop an active clock as of `at`; any of its steps already fired for an instant after
    `at` was fired only because this event arrived late."""
    fired_something = clock.next_step > 0
    _stop(clock, at)
    return [Retraction(clock, at)] if fired_something else []


def _stop(clock: Clock, at: datetime) -> None:
    clock.state = ClockState.STOPPED
    clock.stopped_at = at
    clock.next_fire_at = None
    clock.dirty = True


# --- firing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Firing:
    """One step of a clock fired: what to record and publish."""

    kind: str  # "warning" | "alert" | "escalation_<n>"
    point_at: datetime  # the step's own instant
    severity: str
    notify: tuple[str, ...]
    publish: str  # "warning" | "alert" | "escalation" | "ops_followup"
    group: str | None = None


def fire(
    clock: Clock,
    policy: Policy,
    calendar: Calendar,
    *,
    acknowledged: bool,
    applies: bool = True,
) -> Firing | None:
    """Fire the clock's next step and advance it; None when the step is skipped (an
    escalation that only applies to unacknowledged alerts). A clock whose condition no
    longer holds (`applies` false: a rep who owns no open lead any more) stops unfired."""
    kinds = policy.steps()
    times = step_times(policy, calendar, clock)
    step = clock.next_step
    kind, point = kinds[step], times[step]
    if not applies:
        _stop(clock, point)
        return None
    clock.next_step = step + 1
    clock.dirty = True
    if kind == "alert":
        clock.state = ClockState.BREACHED
    schedule(policy, calendar, clock)
    if kind == "warning":
        assert policy.warning is not None
        w = policy.warning
        return Firing(kind, point, w.severity, tuple(w.notify), "warning")
    if kind == "alert":
        return Firing(kind, point, policy.breach.severity, tuple(policy.breach.notify), "alert")
    escalation = policy.escalations_in_order[step - kinds.index("alert") - 1]
    if escalation.unless_acknowledged and acknowledged:
        return None
    return Firing(
        kind,
        point,
        escalation.severity,
        tuple(escalation.notify),
        escalation.publish if escalation.publish == "ops_followup" else "escalation",
        escalation.group,
    )
