"""sla-monitor's pure clock transitions: start, restart, stop, pause, resume, fire."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sla_monitor import rules
from sla_monitor.calendars import ALWAYS, CalendarSpec, build_calendar
from sla_monitor.policies import Policy

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)

POLICY = Policy.model_validate(
    {
        "name": "ticket_48h",
        "entity": "ticket",
        "start": [{"event": "collab.ticket.opened"}],
        "restart": [{"event": "collab.ticket.reopened"}],
        "duration": "48h",
        "warning": {"after": "24h"},
        "breach": {"severity": "high", "notify": ["owner"]},
        "escalations": [{"after": "3d", "notify": ["role:manager"], "unless_acknowledged": True}],
    }
)
IDENTITY = dict(version=1, entity_type="ticket", entity_id="t1", lead_id="l1")


def started(at: datetime = T0) -> rules.Clock:
    [clock] = rules.start(None, POLICY, ALWAYS, at=at, **IDENTITY).new
    return clock


def test_a_new_clock_is_due_its_duration_after_the_start_and_warns_on_the_way() -> None:
    clock = started()
    assert clock.cycle == 1 and clock.state == "running"
    assert clock.due_at == T0 + 48 * H
    assert clock.warn_at == T0 + 24 * H
    assert clock.next_fire_at == clock.warn_at


def test_a_second_start_leaves_the_first_clock_alone() -> None:
    assert rules.start(started(), POLICY, ALWAYS, at=T0 + H, **IDENTITY).new == []


def test_steps_fire_in_order_warning_alert_escalation_then_nothing() -> None:
    clock = started()
    kinds = []
    while clock.next_fire_at is not None:
        firing = rules.fire(clock, POLICY, ALWAYS, acknowledged=False)
        assert firing is not None
        kinds.append((firing.kind, firing.point_at - T0))
    assert kinds == [("warning", 24 * H), ("alert", 48 * H), ("escalation_1", 48 * H + 72 * H)]
    assert clock.state == "breached"


def test_an_acknowledged_breach_is_not_escalated() -> None:
    clock = started()
    rules.fire(clock, POLICY, ALWAYS, acknowledged=False)
    rules.fire(clock, POLICY, ALWAYS, acknowledged=False)
    assert rules.fire(clock, POLICY, ALWAYS, acknowledged=True) is None
    assert clock.next_fire_at is None


def test_a_stop_before_the_deadline_ends_the_clock_as_of_the_event_time() -> None:
    clock = started()
    outcome = rules.stop(clock, POLICY, ALWAYS, at=T0 + 10 * H, **IDENTITY)
    assert outcome.retractions == []
    assert clock.state == "stopped" and clock.stopped_at == T0 + 10 * H
    assert clock.next_fire_at is None


def test_a_late_stop_for_an_instant_before_the_breach_retracts_what_fired_after_it() -> None:
    clock = started()
    rules.fire(clock, POLICY, ALWAYS, acknowledged=False)  # warning
    rules.fire(clock, POLICY, ALWAYS, acknowledged=False)  # alert
    outcome = rules.stop(clock, POLICY, ALWAYS, at=T0 + 47 * H, **IDENTITY)
    assert outcome.retractions == [rules.Retraction(clock, T0 + 47 * H)]
    assert clock.state == "stopped"


def test_a_stop_older_than_the_clock_changes_nothing() -> None:
    clock = started()
    assert rules.stop(clock, POLICY, ALWAYS, at=T0 - H, **IDENTITY).new == []
    assert clock.state == "running"


def test_a_stop_before_any_start_records_an_answered_clock_so_the_late_start_is_ignored() -> None:
    [answered] = rules.stop(None, POLICY, ALWAYS, at=T0, **IDENTITY).new
    assert answered.state == "stopped"
    assert rules.start(answered, POLICY, ALWAYS, at=T0 - H, **IDENTITY).new == []


def test_a_restart_ends_the_cycle_and_starts_the_next_from_the_event_time() -> None:
    clock = started()
    [second] = rules.restart(clock, POLICY, ALWAYS, at=T0 + 5 * H, **IDENTITY).new
    assert clock.state == "stopped" and clock.stopped_at == T0 + 5 * H
    assert second.cycle == 2 and second.started_at == T0 + 5 * H
    assert second.due_at == T0 + 53 * H


def test_a_restart_older_than_the_current_cycle_is_ignored() -> None:
    clock = started(T0 + 5 * H)
    assert rules.restart(clock, POLICY, ALWAYS, at=T0, **IDENTITY).new == []
    assert clock.state == "running"


def test_a_pause_holds_the_time_left_and_resume_continues_with_it() -> None:
    clock = started()
    rules.pause(clock, POLICY, ALWAYS, at=T0 + 10 * H)
    assert clock.state == "paused" and clock.next_fire_at is None
    assert clock.remaining_s == (38 * H).total_seconds()
    rules.resume(clock, POLICY, ALWAYS, at=T0 + 30 * H)
    assert clock.state == "running"
    assert clock.due_at == T0 + 30 * H + 38 * H
    assert clock.warn_at == T0 + 30 * H + 14 * H  # the warning kept its place in working time
    assert clock.next_fire_at == clock.warn_at


def test_a_clock_that_already_ran_out_is_not_paused() -> None:
    clock = started()
    rules.pause(clock, POLICY, ALWAYS, at=T0 + 49 * H)
    assert clock.state == "running"


def test_48_business_hours_skip_the_weekend() -> None:
    calendar = build_calendar(
        CalendarSpec(kind="business_hours", working_hours=["09:00-17:00"], statutory="none")
    )
    friday_9 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    [clock] = rules.start(None, POLICY, calendar, at=friday_9, **IDENTITY).new
    # 6 working days of 8 h: Fri, Mon-Thu, Fri -> due the next Friday 17:00 Shanghai.
    assert clock.due_at == datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def test_48_business_hours_across_national_day_count_the_make_up_saturday() -> None:
    calendar = build_calendar(CalendarSpec(kind="business_hours", working_hours=["09:00-17:00"]))
    # 2025: 1-8 October off; Sunday 28 September and Saturday 11 October are working days.
    assert calendar.is_working_day(date(2025, 10, 11))
    tuesday_9 = datetime(2025, 9, 30, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, 30 Sep
    [clock] = rules.start(None, POLICY, calendar, at=tuesday_9, **IDENTITY).new
    # 30 Sep, 9 Oct, 10 Oct, 11 Oct (Saturday, make-up), 13 Oct, 14 Oct: 6 days of 8 h.
    assert clock.due_at == datetime(2025, 10, 14, 9, 0, tzinfo=UTC)


def test_a_stop_with_no_clock_of_a_restart_only_policy_records_nothing() -> None:
    restart_only = POLICY.model_copy(update={"start": []})
    assert rules.stop(None, restart_only, ALWAYS, at=T0, **IDENTITY).new == []
