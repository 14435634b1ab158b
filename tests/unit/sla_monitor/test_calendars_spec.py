"""CalendarSpec as written in the policies YAML: what it accepts, what it refuses, the cache."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
import yaml
from pydantic import ValidationError

from sla_monitor.calendars import ALWAYS, CalendarSpec, ElapsedCalendar, build_calendar

YAML = """
kind: business_hours
timezone: Asia/Shanghai
working_hours: ["09:00-12:00", "13:30-18:00"]
weekdays: [4, 0, 1, 2, 3, 0]
statutory: cn
extra_holidays: [2026-12-31]
extra_workdays: ["2026-12-26"]
"""


def test_a_calendar_is_read_from_the_policies_yaml() -> None:
    spec = CalendarSpec.model_validate(yaml.safe_load(YAML))
    assert spec.working_hours == ((time(9), time(12)), (time(13, 30), time(18)))
    assert spec.weekdays == (0, 1, 2, 3, 4)
    assert spec.extra_holidays == (date(2026, 12, 31),)
    assert spec.extra_workdays == (date(2026, 12, 26),)
    assert spec.working_day_length == timedelta(hours=7, minutes=30)


def test_a_calendar_is_written_back_in_the_form_it_was_read() -> None:
    spec = CalendarSpec.model_validate(yaml.safe_load(YAML))
    dumped = spec.model_dump(mode="json")
    assert dumped["working_hours"] == ["09:00-12:00", "13:30-18:00"]
    assert CalendarSpec.model_validate(dumped) == spec


def test_the_defaults_are_elapsed_time_in_shanghai() -> None:
    spec = CalendarSpec()
    assert (spec.kind, spec.timezone, spec.statutory) == ("always", "Asia/Shanghai", "cn")
    assert spec.working_day_length == timedelta(days=1)
    assert isinstance(ALWAYS, ElapsedCalendar)


def test_a_round_the_clock_period_is_written_up_to_24_00() -> None:
    spec = CalendarSpec(kind="business_hours", working_hours=["18:00-24:00"])
    assert spec.working_hours == ((time(18), time(0)),)
    assert spec.working_day_length == timedelta(hours=6)
    assert spec.model_dump(mode="json")["working_hours"] == ["18:00-24:00"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timezone", "Mars/Olympus"),
        ("timezone", "Asia"),
        ("timezone", "../etc/passwd"),
        ("working_hours", []),
        ("working_hours", ["09:00"]),
        ("working_hours", ["nine-twelve"]),
        ("working_hours", ["12:00-09:00"]),
        ("working_hours", ["09:00-12:00", "11:00-18:00"]),
        ("working_hours", ["13:00-18:00", "09:00-12:00"]),
        ("working_hours", ["00:00-24:00", "09:00-12:00"]),
        ("weekdays", [7]),
        ("weekdays", []),
        ("kind", "weekdays"),
        ("statutory", "us"),
        ("holidays", []),
    ],
)
def test_a_bad_calendar_is_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        CalendarSpec.model_validate({"kind": "business_hours", field: value})


def test_a_day_cannot_be_both_a_company_holiday_and_a_company_workday() -> None:
    with pytest.raises(ValidationError, match="both"):
        CalendarSpec(extra_holidays=[date(2026, 12, 26)], extra_workdays=[date(2026, 12, 26)])


def test_a_spec_is_frozen() -> None:
    with pytest.raises(ValidationError):
        CalendarSpec().timezone = "UTC"  # type: ignore[misc]


def test_equal_specs_share_one_calendar() -> None:
    first = build_calendar(CalendarSpec.model_validate(yaml.safe_load(YAML)))
    again = build_calendar(CalendarSpec.model_validate(yaml.safe_load(YAML)))
    other = build_calendar(CalendarSpec(kind="business_hours"))
    assert first is again
    assert first is not other
