"""Properties of calendar arithmetic over many seeded random starts and durations, and a check
against a brute-force reference that walks time in 15-minute steps."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from sla_monitor.calendars import ALWAYS, Calendar, CalendarSpec, build_calendar

MICRO = timedelta(microseconds=1)
QUARTER = timedelta(minutes=15)

CALENDARS: dict[str, Calendar] = {
    "always": ALWAYS,
    "shanghai_default": build_calendar(CalendarSpec(kind="business_hours")),
    "shanghai_8h_six_days": build_calendar(
        CalendarSpec(
            kind="business_hours",
            working_hours=["08:30-12:00", "13:00-17:30"],
            weekdays=[0, 1, 2, 3, 4, 5],
        )
    ),
    "berlin_office": build_calendar(
        CalendarSpec(
            kind="business_hours",
            timezone="Europe/Berlin",
            working_hours=["09:00-17:00"],
            statutory="none",
        )
    ),
    "new_york_split_shift": build_calendar(
        CalendarSpec(
            kind="business_hours",
            timezone="America/New_York",
            working_hours=["00:00-02:30", "07:00-12:00", "22:00-24:00"],
            weekdays=[0, 2, 4, 6],
            statutory="none",
        )
    ),
}


def _random_start(rng: random.Random) -> datetime:
    # 2025-2027: both chinese-calendar years and a holidays.China fallback year.
    base = datetime(2025, 1, 1, tzinfo=UTC)
    offset = timedelta(seconds=rng.randrange(3 * 365 * 86400), microseconds=rng.randrange(10**6))
    return (base + offset).astimezone(ZoneInfo(rng.choice(["Asia/Shanghai", "UTC"])))


def _random_duration(rng: random.Random) -> timedelta:
    kind = rng.random()
    if kind < 0.05:
        return timedelta(0)
    if kind < 0.25:
        return timedelta(hours=rng.choice([1, 8, 24, 48, 72, 120]))
    if kind < 0.30:
        return timedelta(hours=rng.randrange(200, 1000), microseconds=rng.randrange(10**6))
    return timedelta(seconds=rng.randrange(1, 80 * 3600), microseconds=rng.randrange(10**6))


@pytest.mark.parametrize("name", CALENDARS)
def test_working_time_between_is_the_inverse_of_add(name: str) -> None:
    calendar, rng = CALENDARS[name], random.Random(f"inverse-{name}")
    for _ in range(1500):
        start, duration = _random_start(rng), _random_duration(rng)
        due = calendar.add(start, duration)
        assert due.tzinfo is UTC
        assert due >= start
        assert calendar.working_time_between(start, due) == duration, (start, duration, due)


@pytest.mark.parametrize("name", CALENDARS)
def test_a_due_instant_closes_working_time_never_a_break(name: str) -> None:
    calendar, rng = CALENDARS[name], random.Random(f"due-{name}")
    for _ in range(500):
        start, duration = _random_start(rng), _random_duration(rng) + MICRO
        due = calendar.add(start, duration)
        assert calendar.working_time_between(due - MICRO, due) == MICRO, (start, duration)


@pytest.mark.parametrize("name", CALENDARS)
def test_adding_in_two_steps_equals_adding_at_once(name: str) -> None:
    calendar, rng = CALENDARS[name], random.Random(f"steps-{name}")
    for _ in range(500):
        start = _random_start(rng)
        first, second = _random_duration(rng), _random_duration(rng) + MICRO
        assert calendar.add(calendar.add(start, first), second) == calendar.add(
            start, first + second
        ), (start, first, second)


def _reference_add(start: datetime, duration: timedelta, is_working_slot) -> datetime:
    """Walk 15-minute slots until `duration` of working slots has passed."""
    at, left = start, duration
    while left:
        if is_working_slot(at):
            left -= QUARTER
        at += QUARTER
    return at


def _shanghai_default_slot(at: datetime) -> bool:
    local = at.astimezone(ZoneInfo("Asia/Shanghai"))
    in_hours = time(9) <= local.time() < time(12) or time(13, 30) <= local.time() < time(18)
    return in_hours and chinese_calendar.is_workday(local.date())


def _berlin_office_slot(at: datetime) -> bool:
    local = at.astimezone(ZoneInfo("Europe/Berlin"))
    return local.weekday() < 5 and time(9) <= local.time() < time(17)


@pytest.mark.parametrize(
    ("name", "is_working_slot"),
    [("shanghai_default", _shanghai_default_slot), ("berlin_office", _berlin_office_slot)],
)
def test_add_agrees_with_a_brute_force_walk_on_a_quarter_hour_grid(name, is_working_slot) -> None:
    calendar, rng = CALENDARS[name], random.Random(f"reference-{name}")
    base = datetime(2025, 1, 1, tzinfo=UTC)
    for _ in range(150):
        start = base + QUARTER * rng.randrange(2 * 365 * 96)  # 2025-2026: the data's own years
        duration = QUARTER * rng.randrange(1, 4 * 48)
        if start + timedelta(days=30) > datetime(2027, 1, 1, tzinfo=UTC):
            continue  # keep the reference on chinese-calendar's years
        expected = _reference_add(start, duration, is_working_slot)
        assert calendar.add(start, duration) == expected, (start, duration)
