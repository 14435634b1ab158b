"""Daily deadlines (`deadline: {daily_at: ...}`): one clock per working day, pure transitions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla_monitor import rules
from sla_monitor.calendars import CalendarSpec, build_calendar
from sla_monitor.policies import PoliciesInvalid, Policy, parse

SHANGHAI = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)
CALENDAR = build_calendar(
    CalendarSpec(kind="business_hours", working_hours=["09:00-12:00", "13:30-18:00"])
)
POLICY = Policy.model_validate(
    {
        "name": "daily_clearance",
        "entity": "rep",
        "applies_while": "owns_open_leads",
        "start": [{"event": "lead.routed", "entity_key": "owner_id"}],
        "restart": [{"event": "activity.logged"}],
        "deadline": {"daily_at": "18:00"},
        "breach": {"severity": "medium", "notify": ["owner"]},
        "escalations": [{"after": "1h", "notify": ["supervisor"]}],
    }
)
IDENTITY = dict(version=1, entity_type="rep", entity_id="rep-1", lead_id=None)


def local(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A Shanghai wall time, as the UTC instant events carry."""
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SHANGHAI).astimezone(
        UTC
    )


# 2026, around National Day: 1-7 October off (the 3rd and 4th a weekend), Saturday 10
# October a make-up working day, Sunday 11 October off.
FRIDAY = date(2026, 10, 9)
MAKE_UP_SATURDAY = date(2026, 10, 10)
SUNDAY = date(2026, 10, 11)
MONDAY = date(2026, 10, 12)
NATIONAL_DAY = date(2026, 10, 1)


def started(at: datetime) -> rules.Clock:
    [clock] = rules.daily_start(None, POLICY, CALENDAR, at=at, **IDENTITY).new
    return clock


def test_the_clock_of_a_working_day_is_due_at_its_cut_off_and_its_cycle_is_the_day() -> None:
    clock = started(local(FRIDAY, 10))
    assert clock.cycle == 20261009
    assert clock.due_at == local(FRIDAY, 18)
    assert clock.started_at == local(FRIDAY, 10)
    assert clock.next_fire_at == local(FRIDAY, 18)
    assert rules.cycle_day(clock.cycle) == FRIDAY


@pytest.mark.parametrize(
    ("at", "day"),
    [
        (local(FRIDAY, 17, 59, 59), FRIDAY),
        (local(FRIDAY, 18), MAKE_UP_SATURDAY),  # at the cut-off: that day is over
        (local(SUNDAY, 10), MONDAY),  # a day off has no clock
        (local(NATIONAL_DAY, 10), date(2026, 10, 8)),  # nor has the holiday week
        (local(MAKE_UP_SATURDAY, 8), MAKE_UP_SATURDAY),  # the make-up Saturday has one
    ],
)
def test_a_start_begins_the_first_working_day_whose_cut_off_is_ahead(at, day) -> None:  # type: ignore[no-untyped-def]
    assert rules.cycle_day(started(at).cycle) == day


def test_a_start_while_a_clock_runs_or_awaits_its_escalation_changes_nothing() -> None:
    clock = started(local(FRIDAY, 10))
    assert rules.daily_start(clock, POLICY, CALENDAR, at=local(FRIDAY, 11), **IDENTITY).new == []
    rules.fire(clock, POLICY, CALENDAR, acknowledged=False)
    assert clock.state == "breached"
    assert (
        rules.daily_start(clock, POLICY, CALENDAR, at=local(FRIDAY, 18, 30), **IDENTITY).new == []
    )


def test_a_start_never_reuses_the_day_of_the_current_cycle() -> None:
    clock = started(local(FRIDAY, 10))
    rules.daily_answer(clock, POLICY, CALENDAR, at=local(FRIDAY, 11), next_day=False, **IDENTITY)
    [again] = rules.daily_start(clock, POLICY, CALENDAR, at=local(FRIDAY, 9), **IDENTITY).new
    assert rules.cycle_day(again.cycle) == MAKE_UP_SATURDAY


def test_an_update_before_the_cut_off_answers_the_day_and_the_next_working_day_follows() -> None:
    clock = started(local(FRIDAY, 10))
    outcome = rules.daily_answer(
        clock, POLICY, CALENDAR, at=local(FRIDAY, 17, 59), next_day=True, **IDENTITY
    )
    assert clock.state == "stopped" and clock.stopped_at == local(FRIDAY, 17, 59)
    assert clock.next_fire_at is None and outcome.retractions == []
    [saturday] = outcome.new
    assert saturday.cycle == 20261010
    assert saturday.started_at == local(MAKE_UP_SATURDAY, 0)
    assert saturday.due_at == local(MAKE_UP_SATURDAY, 18)
    # An update on Saturday answers it; Sunday is off, so Monday's is next.
    [monday] = rules.daily_answer(
        saturday, POLICY, CALENDAR, at=local(MAKE_UP_SATURDAY, 9), next_day=True, **IDENTITY
    ).new
    assert monday.cycle == 20261012


def test_an_update_older_than_the_current_day_changes_nothing() -> None:
    [saturday] = rules.daily_answer(
        started(local(FRIDAY, 10)),
        POLICY,
        CALENDAR,
        at=local(FRIDAY, 11),
        next_day=True,
        **IDENTITY,
    ).new
    outcome = rules.daily_answer(
        saturday, POLICY, CALENDAR, at=local(FRIDAY, 20), next_day=True, **IDENTITY
    )
    assert outcome.new == [] and saturday.state == "running"


def test_an_update_without_open_leads_ends_the_clock_with_no_next_day() -> None:
    clock = started(local(FRIDAY, 10))
    outcome = rules.daily_answer(
        clock, POLICY, CALENDAR, at=local(FRIDAY, 11), next_day=False, **IDENTITY
    )
    assert outcome.new == [] and clock.state == "stopped"


def test_the_alert_fires_at_the_cut_off_the_escalation_an_elapsed_hour_later() -> None:
    clock = started(local(FRIDAY, 10))
    alert = rules.fire(clock, POLICY, CALENDAR, acknowledged=False)
    assert alert is not None and alert.kind == "alert" and alert.point_at == local(FRIDAY, 18)
    assert rules.next_day(clock, POLICY, CALENDAR, version=1) is None  # escalation pending
    assert clock.next_fire_at == local(FRIDAY, 19)  # not 1 working hour (Saturday 10:00)
    escalation = rules.fire(clock, POLICY, CALENDAR, acknowledged=False)
    assert escalation is not None and escalation.notify == ("supervisor",)
    successor = rules.next_day(clock, POLICY, CALENDAR, version=1)
    assert successor is not None and successor.cycle == 20261010
    assert successor.started_at == local(MAKE_UP_SATURDAY, 0)
    assert not clock.is_current
    assert rules.next_day(clock, POLICY, CALENDAR, version=1) is None  # once


def test_an_update_after_the_alert_but_before_the_escalation_clears_it() -> None:
    clock = started(local(FRIDAY, 10))
    rules.fire(clock, POLICY, CALENDAR, acknowledged=False)
    outcome = rules.daily_answer(
        clock, POLICY, CALENDAR, at=local(FRIDAY, 18, 30), next_day=True, **IDENTITY
    )
    assert clock.state == "stopped" and clock.next_fire_at is None
    # Retractions cover only steps for instants after the update: none here.
    assert outcome.retractions == [rules.Retraction(clock, local(FRIDAY, 18, 30))]
    assert [c.cycle for c in outcome.new] == [20261010]


def test_an_update_that_happened_before_the_cut_off_but_arrived_after_the_alert_retracts_it() -> (
    None
):
    clock = started(local(FRIDAY, 10))
    rules.fire(clock, POLICY, CALENDAR, acknowledged=False)
    outcome = rules.daily_answer(
        clock, POLICY, CALENDAR, at=local(FRIDAY, 17, 59), next_day=True, **IDENTITY
    )
    assert outcome.retractions == [rules.Retraction(clock, local(FRIDAY, 17, 59))]


def test_a_clock_whose_rep_owns_no_open_lead_at_the_cut_off_stops_unfired_with_no_next_day() -> (
    None
):
    clock = started(local(FRIDAY, 10))
    assert rules.fire(clock, POLICY, CALENDAR, acknowledged=False, applies=False) is None
    assert clock.state == "stopped" and clock.next_fire_at is None
    assert rules.next_day(clock, POLICY, CALENDAR, version=1) is None


def problems(source: str) -> list[dict[str, str]]:
    with pytest.raises(PoliciesInvalid) as caught:
        parse(source)
    return caught.value.problems


DAILY = """
policies:
  - name: daily
    entity: rep
    start: [{event: lead.routed, entity_key: owner_id}]
    breach: {severity: medium, notify: [owner]}
"""


def test_a_daily_deadline_is_validated() -> None:
    assert parse(DAILY + '    deadline: {daily_at: "18:30"}\n').policies[0].deadline is not None
    [both] = problems(DAILY + '    deadline: {daily_at: "18:00"}\n    duration: 1h\n')
    assert "either a duration or a deadline" in both["message"]
    [neither] = problems(DAILY)
    assert "either a duration or a deadline" in neither["message"]
    [unquoted] = problems(DAILY + "    deadline: {daily_at: 18:00}\n")  # YAML reads 1080
    assert unquoted["field"] == "deadline.daily_at" and "quotes" in unquoted["message"]
    [bad] = problems(DAILY + '    deadline: {daily_at: "6pm"}\n')
    assert bad["field"] == "deadline.daily_at"
    [warned] = problems(DAILY + '    deadline: {daily_at: "18:00"}\n    warning: {after: 1h}\n')
    assert "no warning" in warned["message"]
    lead = DAILY.replace("entity: rep", "entity: lead")
    [applies] = problems(
        lead + '    deadline: {daily_at: "18:00"}\n    applies_while: owns_open_leads\n'
    )
    assert "rep policies" in applies["message"]


def test_an_update_arriving_after_its_day_fired_everything_retracts_that_day_only() -> None:
    friday = started(local(FRIDAY, 10))
    rules.fire(friday, POLICY, CALENDAR, acknowledged=False)  # 18:00, the rep
    rules.fire(friday, POLICY, CALENDAR, acknowledged=False)  # 19:00, the supervisor
    saturday = rules.next_day(friday, POLICY, CALENDAR, version=1)
    assert saturday is not None
    outcome = rules.daily_answer(
        saturday,
        POLICY,
        CALENDAR,
        at=local(FRIDAY, 17, 59),
        next_day=True,
        earlier=friday,
        **IDENTITY,
    )
    assert outcome.retractions == [rules.Retraction(friday, local(FRIDAY, 17, 59))]
    assert outcome.new == []
    assert friday.state == "stopped" and saturday.state == "running"
