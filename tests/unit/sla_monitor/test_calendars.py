"""Business-calendar arithmetic on dated cases; every expected instant is worked out by hand.

Chinese statutory data used below (chinese-calendar 1.11.0, the State Council's 2026 schedule):
- Spring Festival: Sun 2026-02-15 to Mon 2026-02-23 off; Sat 02-14 and Sat 02-28 are worked.
- Mid-Autumn: Fri 2026-09-25 to Sun 09-27 off; Sun 2026-09-20 is worked.
- National Day: Thu 2026-10-01 to Wed 10-07 off; Sat 2026-10-10 is worked.
- November 2026 has no statutory day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import structlog

from sla_monitor import calendars
from sla_monitor.calendars import (
    ALWAYS,
    BusinessCalendar,
    CalendarSpec,
    build_calendar,
    describe_remaining,
    remaining,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)

# 8 working hours a day (09:00-12:00, 13:00-18:00): "48 business hours" are 6 working days.
EIGHT_HOURS = build_calendar(
    CalendarSpec(kind="business_hours", working_hours=["09:00-12:00", "13:00-18:00"])
)
# The default: 09:00-12:00 and 13:30-18:00, a 7.5 h day with a 90-minute lunch break.
DEFAULT = build_calendar(CalendarSpec(kind="business_hours"))


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def cet(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


# --- across a weekend ---------------------------------------------------------------------------


def test_48_business_hours_from_a_friday_morning_run_into_the_week_after_next() -> None:
    # Fri 11-20 10:00-18:00 = 7 h; Mon 23 - Fri 27 = 40 h (47 h); 1 h on Mon 30 -> 10:00.
    due = EIGHT_HOURS.add(cst(2026, 11, 20, 10), 48 * H)
    assert due == cst(2026, 11, 30, 10)
    assert due.tzinfo is UTC
    assert due == datetime(2026, 11, 30, 2, tzinfo=UTC)


def test_48_business_hours_are_six_working_days_due_at_the_close_of_the_sixth() -> None:
    # Mon 11-23 to Fri 11-27 = 40 h, Mon 11-30 = 8 h: due at its close, not Tuesday 09:00.
    assert EIGHT_HOURS.add(cst(2026, 11, 23, 9), 48 * H) == cst(2026, 11, 30, 18)


def test_a_clock_started_on_a_saturday_starts_counting_on_monday_morning() -> None:
    assert EIGHT_HOURS.add(cst(2026, 11, 21, 15), 48 * H) == cst(2026, 11, 30, 18)
    assert EIGHT_HOURS.add(cst(2026, 11, 21, 15), H) == cst(2026, 11, 23, 10)


def test_a_clock_started_before_opening_counts_from_nine() -> None:
    assert EIGHT_HOURS.add(cst(2026, 11, 24, 7, 12), H) == cst(2026, 11, 24, 10)


def test_a_clock_started_after_closing_counts_from_the_next_morning() -> None:
    assert EIGHT_HOURS.add(cst(2026, 11, 24, 18, 30), H) == cst(2026, 11, 25, 10)


def test_the_working_time_over_a_weekend_is_friday_afternoon_plus_monday_morning() -> None:
    assert EIGHT_HOURS.working_time_between(cst(2026, 11, 20, 17), cst(2026, 11, 23, 10)) == 2 * H


# --- the National Day week and the Mid-Autumn festival of 2026 ---------------------------------


def test_48_business_hours_across_the_national_day_week_count_its_make_up_saturday() -> None:
    # Wed 09-30 14:00-18:00 = 4 h; Oct 1-7 off; Thu 8, Fri 9, Sat 10 (make-up) = 24 h (28 h);
    # Sun 11 off; Mon 12, Tue 13 = 16 h (44 h); Wed 14: 09:00-12:00 (47 h), 13:00-14:00 (48 h).
    assert EIGHT_HOURS.add(cst(2026, 9, 30, 14), 48 * H) == cst(2026, 10, 14, 14)


def test_without_the_make_up_saturday_the_same_clock_would_be_due_a_day_later() -> None:
    # Sanity check of the case above: the make-up day is what moves it from Oct 15 to Oct 14.
    no_make_up = build_calendar(
        CalendarSpec(
            kind="business_hours",
            working_hours=["09:00-12:00", "13:00-18:00"],
            extra_holidays=[date(2026, 10, 10)],
        )
    )
    assert no_make_up.add(cst(2026, 9, 30, 14), 48 * H) == cst(2026, 10, 15, 14)


def test_the_make_up_saturday_after_national_day_is_worked() -> None:
    # Fri 10-09 17:00-18:00 = 1 h, then Sat 10-10 09:00-10:00.
    assert EIGHT_HOURS.add(cst(2026, 10, 9, 17), 2 * H) == cst(2026, 10, 10, 10)


def test_the_make_up_sunday_before_mid_autumn_is_worked() -> None:
    # Fri 09-18 17:00-18:00 = 1 h; Sat 19 off; Sun 09-20 is a make-up working day.
    assert EIGHT_HOURS.add(cst(2026, 9, 18, 17), 2 * H) == cst(2026, 9, 20, 10)


def test_a_clock_started_during_the_holiday_starts_counting_when_it_ends() -> None:
    assert EIGHT_HOURS.add(cst(2026, 10, 1, 10), H) == cst(2026, 10, 8, 10)


def test_working_days_around_national_day_follow_the_statutory_schedule() -> None:
    assert not EIGHT_HOURS.is_working_day(date(2026, 10, 1))  # Thursday, National Day
    assert not EIGHT_HOURS.is_working_day(date(2026, 10, 7))  # Wednesday, still off
    assert EIGHT_HOURS.is_working_day(date(2026, 10, 10))  # Saturday, make-up day
    assert EIGHT_HOURS.is_working_day(date(2026, 9, 20))  # Sunday, make-up day
    assert not EIGHT_HOURS.is_working_day(date(2026, 10, 11))  # an ordinary Sunday
    assert EIGHT_HOURS.next_working_day(date(2026, 9, 30)) == date(2026, 10, 8)
    assert EIGHT_HOURS.next_working_day(date(2026, 10, 9)) == date(2026, 10, 10)
    assert EIGHT_HOURS.next_working_day(date(2026, 10, 10)) == date(2026, 10, 12)


def test_no_working_time_passes_during_the_national_day_week() -> None:
    assert EIGHT_HOURS.working_time_between(cst(2026, 9, 30, 18), cst(2026, 10, 8, 9)) == 0 * H


# --- Spring Festival 2026 ---------------------------------------------------------------------


def test_24_business_hours_across_spring_festival() -> None:
    # Fri 02-13 15:00-18:00 = 3 h; Sat 14 (make-up) = 8 h (11 h); Feb 15-23 off;
    # Tue 24 = 8 h (19 h); Wed 25: 09:00-12:00 (22 h), 13:00-15:00 (24 h).
    assert EIGHT_HOURS.add(cst(2026, 2, 13, 15), 24 * H) == cst(2026, 2, 25, 15)


def test_48_business_hours_after_spring_festival_count_the_make_up_saturday() -> None:
    # Tue 02-24 to Fri 27 = 32 h; Sat 28 (make-up) = 8 h (40 h); Sun off; Mon 03-02 = 8 h.
    assert EIGHT_HOURS.add(cst(2026, 2, 24, 9), 48 * H) == cst(2026, 3, 2, 18)


# --- the lunch break and period boundaries (default calendar, 7.5 h a day) ----------------------


def test_the_lunch_break_does_not_count() -> None:
    # Tue 11:00-12:00 = 1 h; lunch until 13:30; 13:30-14:30.
    assert DEFAULT.add(cst(2026, 11, 24, 11), 2 * H) == cst(2026, 11, 24, 14, 30)
    assert DEFAULT.working_time_between(cst(2026, 11, 24, 11), cst(2026, 11, 24, 14)) == 1.5 * H
    assert DEFAULT.working_time_between(cst(2026, 11, 24, 12), cst(2026, 11, 24, 13, 30)) == 0 * H


def test_a_clock_started_during_lunch_counts_from_half_past_one() -> None:
    assert DEFAULT.add(cst(2026, 11, 24, 12, 15), H) == cst(2026, 11, 24, 14, 30)


def test_a_clock_started_exactly_at_the_end_of_a_period_counts_from_the_next_one() -> None:
    assert DEFAULT.add(cst(2026, 11, 24, 12), 0.5 * H) == cst(2026, 11, 24, 14)
    assert DEFAULT.add(cst(2026, 11, 24, 18), H) == cst(2026, 11, 25, 10)


def test_a_duration_that_fills_a_period_is_due_at_its_end_not_after_the_break() -> None:
    assert DEFAULT.add(cst(2026, 11, 24, 9), 3 * H) == cst(2026, 11, 24, 12)


def test_48_business_hours_of_7_5_hour_days_end_on_the_seventh_day() -> None:
    # Mon 11-23 to Fri 27 = 37.5 h; Mon 30 = 7.5 h (45 h); Tue 12-01 09:00-12:00 = 3 h.
    assert DEFAULT.add(cst(2026, 11, 23, 9), 48 * H) == cst(2026, 12, 1, 12)


# --- zero, negative and very long durations -----------------------------------------------------


def test_a_zero_duration_is_due_at_once_even_outside_working_hours() -> None:
    saturday = cst(2026, 11, 21, 15)
    assert DEFAULT.add(saturday, 0 * H) == saturday
    assert ALWAYS.add(saturday, 0 * H) == saturday
    assert DEFAULT.working_time_between(saturday, saturday) == 0 * H


def test_no_working_time_lies_between_an_end_before_its_start() -> None:
    assert DEFAULT.working_time_between(cst(2026, 11, 25, 10), cst(2026, 11, 24, 10)) == 0 * H
    assert ALWAYS.working_time_between(cst(2026, 11, 25, 10), cst(2026, 11, 24, 10)) == 0 * H


def test_a_negative_duration_or_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        DEFAULT.add(cst(2026, 11, 24, 10), -H)
    with pytest.raises(ValueError, match="aware"):
        DEFAULT.add(datetime(2026, 11, 24, 10), H)
    with pytest.raises(ValueError, match="aware"):
        ALWAYS.working_time_between(datetime(2026, 11, 24, 10), cst(2026, 11, 24, 10))


def test_1000_business_hours_are_125_working_days() -> None:
    # From Mon 2026-01-05 the working days are Jan 20, Feb 16 (20 weekdays - 6 off + 2 make-up
    # Saturdays), Mar 22, Apr 21 (Mon 04-06 off), May 19 (3 weekdays off + Sat 05-09),
    # Jun 21 (Fri 06-19 off) = 119; then Jul 1, 2, 3, 6, 7, 8: the 125th is Wed 07-08.
    assert EIGHT_HOURS.add(cst(2026, 1, 5, 9), 1000 * H) == cst(2026, 7, 8, 18)
    assert EIGHT_HOURS.working_time_between(cst(2026, 1, 5, 9), cst(2026, 7, 8, 18)) == 1000 * H


def test_a_very_long_duration_takes_one_step_per_day_not_per_minute() -> None:
    calendar = BusinessCalendar(CalendarSpec(kind="business_hours"))  # a fresh day cache
    start = cst(2025, 1, 6, 9)
    due = calendar.add(start, 2000 * H)
    info = calendar._day.cache_info()  # white box: one day lookup per calendar day walked
    assert info.hits + info.misses == (due.astimezone(SHANGHAI).date() - start.date()).days + 1


# --- company days and other weeks ---------------------------------------------------------------


def test_a_company_holiday_is_skipped_and_a_company_workday_is_worked() -> None:
    spec = CalendarSpec(
        kind="business_hours",
        working_hours=["09:00-12:00", "13:00-18:00"],
        extra_holidays=[date(2026, 11, 27)],
        extra_workdays=[date(2026, 11, 21)],
    )
    calendar = build_calendar(spec)
    # Thu 11-26 17:00-18:00, Fri 27 off (company), Sat 28 and Sun 29 off, Mon 30 09:00-10:00.
    assert calendar.add(cst(2026, 11, 26, 17), 2 * H) == cst(2026, 11, 30, 10)
    # Fri 11-20 17:00-18:00, then Sat 21 is a company workday.
    assert calendar.add(cst(2026, 11, 20, 17), 2 * H) == cst(2026, 11, 21, 10)


def test_a_company_holiday_overrides_a_statutory_make_up_day() -> None:
    spec = CalendarSpec(kind="business_hours", extra_holidays=[date(2026, 10, 10)])
    assert not build_calendar(spec).is_working_day(date(2026, 10, 10))
    assert build_calendar(spec).next_working_day(date(2026, 10, 9)) == date(2026, 10, 12)


def test_a_six_day_week_still_rests_on_statutory_holidays() -> None:
    six_days = build_calendar(CalendarSpec(kind="business_hours", weekdays=[0, 1, 2, 3, 4, 5]))
    assert six_days.is_working_day(date(2026, 11, 21))  # an ordinary Saturday
    assert not six_days.is_working_day(date(2026, 10, 3))  # a Saturday in the National Day week


def test_without_statutory_days_national_day_is_an_ordinary_thursday() -> None:
    plain = build_calendar(CalendarSpec(kind="business_hours", statutory="none"))
    assert plain.is_working_day(date(2026, 10, 1))
    assert not plain.is_working_day(date(2026, 10, 10))  # nor is the make-up Saturday worked


# --- years chinese-calendar does not know -------------------------------------------------------


def test_a_year_beyond_the_data_falls_back_to_holidays_china_and_warns_once() -> None:
    calendars._cn_statutory.cache_clear()
    with structlog.testing.capture_logs() as logs:
        fresh = BusinessCalendar(CalendarSpec(kind="business_hours"))
        # holidays.China 2027: National Day Fri 10-01 to Tue 10-05 (with observed days).
        assert not fresh.is_working_day(date(2027, 10, 1))
        assert not fresh.is_working_day(date(2027, 10, 4))
        assert fresh.is_working_day(date(2027, 10, 6))
        # No make-up days are known, so the calendar keeps running on ordinary weekdays.
        assert fresh.add(cst(2027, 9, 30, 17), 2 * H) == cst(2027, 10, 6, 10)
        DEFAULT.is_working_day(date(2027, 12, 1))
    fallbacks = [e for e in logs if e["event"] == "sla_calendar_statutory_fallback"]
    assert [(e["log_level"], e["year"]) for e in fallbacks] == [("warning", 2027)]


def test_years_long_past_or_far_ahead_do_not_crash() -> None:
    assert DEFAULT.add(cst(1999, 12, 31, 17), H) == cst(1999, 12, 31, 18)
    # Thu 2099-12-31; Fri 2100-01-01 is New Year's Day, then a weekend.
    assert DEFAULT.next_working_day(date(2099, 12, 31)) == date(2100, 1, 4)


# --- time zones with daylight saving time -------------------------------------------------------

BERLIN_OFFICE = build_calendar(
    CalendarSpec(
        kind="business_hours",
        timezone="Europe/Berlin",
        working_hours=["09:00-17:00"],
        statutory="none",
    )
)


def test_business_hours_in_berlin_follow_the_clocks_going_forward() -> None:
    # Clocks go forward on Sun 2026-03-29. Fri 16:00 CET (15:00Z) to 17:00 = 1 h;
    # Mon 09:00 CEST is 07:00Z, so the second hour ends at 10:00 CEST = 08:00Z.
    due = BERLIN_OFFICE.add(cet(2026, 3, 27, 16), 2 * H)
    assert due == datetime(2026, 3, 30, 8, tzinfo=UTC) == cet(2026, 3, 30, 10)


def test_business_hours_in_berlin_follow_the_clocks_going_back() -> None:
    # Clocks go back on Sun 2026-10-25. Fri 16:00 CEST (14:00Z) to 17:00 = 1 h;
    # Mon 09:00 CET is 08:00Z, so the second hour ends at 10:00 CET = 09:00Z.
    due = BERLIN_OFFICE.add(cet(2026, 10, 23, 16), 2 * H)
    assert due == datetime(2026, 10, 26, 9, tzinfo=UTC) == cet(2026, 10, 26, 10)


def test_a_round_the_clock_day_is_23_or_25_hours_long_when_the_clocks_change() -> None:
    every_hour = build_calendar(
        CalendarSpec(
            kind="business_hours",
            timezone="Europe/Berlin",
            working_hours=["00:00-24:00"],
            weekdays=[5, 6],  # weekends only, to see the Sundays the clocks change on
            statutory="none",
        )
    )
    assert every_hour.working_time_between(cet(2026, 3, 28), cet(2026, 3, 30)) == 47 * H
    assert every_hour.working_time_between(cet(2026, 10, 24), cet(2026, 10, 26)) == 49 * H
    # Sun 03-29 holds only 23 hours, so the 24th working hour from its midnight is the first
    # hour of the next working day, Sat 04-04.
    assert every_hour.add(cet(2026, 3, 29), 24 * H) == cet(2026, 4, 4, 1)


def test_a_cut_off_is_the_local_wall_time_of_that_day_in_utc() -> None:
    assert DEFAULT.cutoff(date(2026, 11, 24), time(18)) == datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert ALWAYS.cutoff(date(2026, 11, 24), time(18)) == datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert BERLIN_OFFICE.cutoff(date(2026, 3, 27), time(18)) == datetime(
        2026, 3, 27, 17, tzinfo=UTC
    )
    assert BERLIN_OFFICE.cutoff(date(2026, 3, 30), time(18)) == datetime(
        2026, 3, 30, 16, tzinfo=UTC
    )


# --- always -------------------------------------------------------------------------------------


def test_the_always_calendar_is_plain_elapsed_time() -> None:
    start = cst(2026, 9, 30, 14)
    assert ALWAYS.add(start, 48 * H) == cst(2026, 10, 2, 14)
    assert ALWAYS.working_time_between(start, cst(2026, 10, 2, 14)) == 48 * H
    assert ALWAYS.is_working_day(date(2026, 10, 1))
    assert ALWAYS.next_working_day(date(2026, 10, 1)) == date(2026, 10, 2)


# --- time left ----------------------------------------------------------------------------------


def test_time_left_counts_only_working_time() -> None:
    # Fri 11-27 17:00-18:00 and Mon 11-30 09:00-10:00.
    assert remaining(EIGHT_HOURS, cst(2026, 11, 27, 17), cst(2026, 11, 30, 10)) == 2 * H
    assert remaining(ALWAYS, cst(2026, 11, 27, 17), cst(2026, 11, 30, 10)) == 65 * H


def test_time_left_is_negative_working_time_once_overdue() -> None:
    # Due Fri 17:30, now Mon 09:30: half an hour on Friday and half an hour on Monday.
    assert remaining(EIGHT_HOURS, cst(2026, 11, 30, 9, 30), cst(2026, 11, 27, 17, 30)) == -H
    assert remaining(EIGHT_HOURS, cst(2026, 11, 30, 10), cst(2026, 11, 30, 10)) == 0 * H


@pytest.mark.parametrize(
    ("left", "day", "text"),
    [
        (timedelta(hours=27, minutes=20), timedelta(days=1), "1 d 3 h 20 min of working time"),
        (timedelta(hours=11), timedelta(hours=8), "1 d 3 h of working time"),
        (timedelta(hours=16), timedelta(hours=8), "2 d of working time"),
        (timedelta(hours=7, minutes=30), timedelta(hours=7, minutes=30), "1 d of working time"),
        (timedelta(minutes=119, seconds=59), timedelta(days=1), "1 h 59 min of working time"),
        (timedelta(seconds=30), timedelta(days=1), "< 1 min of working time"),
        (timedelta(0), timedelta(days=1), "0 min of working time"),
        (-timedelta(hours=2, minutes=5), timedelta(days=1), "overdue by 2 h 5 min of working time"),
    ],
)
def test_time_left_reads_in_days_hours_and_minutes(
    left: timedelta, day: timedelta, text: str
) -> None:
    assert describe_remaining(left, day=day) == text
