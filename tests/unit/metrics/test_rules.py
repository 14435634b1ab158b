"""metrics' pure rules: business days in Shanghai and report periods."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from metrics import rules


def test_just_after_midnight_in_shanghai_is_the_new_day_though_utc_is_still_the_old_one() -> None:
    instant = datetime(2026, 3, 9, 16, 5, tzinfo=UTC)  # 00:05 on the 10th in Shanghai
    assert rules.business_day(instant) == date(2026, 3, 10)


def test_just_before_midnight_in_shanghai_is_still_that_day() -> None:
    instant = datetime(2026, 3, 9, 23, 59, 59, tzinfo=timezone(timedelta(hours=8)))
    assert rules.business_day(instant) == date(2026, 3, 9)


def test_the_business_day_does_not_depend_on_the_offset_an_instant_is_written_in() -> None:
    shanghai = datetime(2026, 3, 10, 7, 0, tzinfo=timezone(timedelta(hours=8)))
    new_york = shanghai.astimezone(timezone(timedelta(hours=-5)))
    assert new_york.date() == date(2026, 3, 9)
    assert rules.business_day(new_york) == rules.business_day(shanghai) == date(2026, 3, 10)


def test_another_business_timezone_can_be_asked_for() -> None:
    instant = datetime(2026, 3, 9, 16, 5, tzinfo=UTC)
    assert rules.business_day(instant, tz="Europe/Berlin") == date(2026, 3, 9)


def test_an_instant_without_a_timezone_has_no_business_day() -> None:
    with pytest.raises(ValueError, match="naive"):
        rules.business_day(datetime(2026, 3, 9, 12, 0))


def test_a_period_counts_both_its_first_and_last_day() -> None:
    assert rules.period_days(date(2026, 3, 9), date(2026, 3, 9)) == 1
    assert rules.period_days(date(2028, 1, 1), date(2028, 12, 31)) == 366


def test_a_one_day_period_and_a_leap_year_are_valid() -> None:
    rules.check_period(date(2026, 3, 9), date(2026, 3, 9))
    rules.check_period(date(2028, 1, 1), date(2028, 12, 31))


def test_a_period_that_ends_before_it_starts_is_refused_naming_from() -> None:
    with pytest.raises(rules.InvalidPeriod) as refused:
        rules.check_period(date(2026, 3, 10), date(2026, 3, 9))
    assert refused.value.field == "from"


def test_a_period_longer_than_366_days_is_refused_naming_to() -> None:
    with pytest.raises(rules.InvalidPeriod) as refused:
        rules.check_period(date(2025, 1, 1), date(2026, 1, 2))
    assert refused.value.field == "to"
