"""sla-monitor's pure deadline arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sla_monitor import rules

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_the_first_touch_policy_gives_sales_48_hours_on_a_lead() -> None:
    assert rules.FIRST_TOUCH_48H.name == "first_touch_48h"
    assert rules.FIRST_TOUCH_48H.entity_type == "lead"
    assert rules.FIRST_TOUCH_48H.duration == timedelta(hours=48)


def test_a_clock_is_due_its_duration_after_it_started() -> None:
    due = rules.due_at(START, rules.FIRST_TOUCH_48H.duration)
    assert due == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_a_clock_started_in_another_timezone_is_due_at_the_same_instant() -> None:
    beijing = START.astimezone(timezone(timedelta(hours=8)))
    assert rules.due_at(beijing, timedelta(hours=48)) == rules.due_at(START, timedelta(hours=48))


def test_remaining_time_counts_whole_seconds_down_to_the_deadline() -> None:
    due = START + timedelta(hours=48)
    assert rules.remaining_seconds(due, now=START + timedelta(hours=10)) == 38 * 3600
    assert rules.remaining_seconds(due, now=due - timedelta(seconds=1.5)) == 1
    assert rules.remaining_seconds(due, now=due) == 0


def test_an_overdue_clock_has_negative_remaining_time_from_its_first_instant() -> None:
    due = START + timedelta(hours=48)
    assert rules.remaining_seconds(due, now=due + timedelta(hours=2)) == -2 * 3600
    assert rules.remaining_seconds(due, now=due + timedelta(microseconds=1)) == -1
