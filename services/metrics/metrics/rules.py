"""Pure decisions of metrics (no I/O)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

# The sales teams work on China time: a lead at 00:05 in Shanghai belongs to that new day,
# although it is still the previous day in UTC.
BUSINESS_TZ = "Asia/Shanghai"

# A year, leap years included: longer periods are for exports, not for one answer.
MAX_PERIOD_DAYS = 366


class InvalidPeriod(ValueError):
    def __init__(self, field: str, message: str, code: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code


def business_day(instant: datetime, tz: str = BUSINESS_TZ) -> date:
    """The calendar day an instant falls on where the business is."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime: an instant needs a timezone to have a business day")
    return instant.astimezone(ZoneInfo(tz)).date()


def check_period(start: date, end: date) -> None:
    """A report period: `start` to `end`, both days included, at most MAX_PERIOD_DAYS long."""
    if start > end:
        raise InvalidPeriod("from", "from must not be after to", "after_to")
    if period_days(start, end) > MAX_PERIOD_DAYS:
        raise InvalidPeriod("to", f"the period may span at most {MAX_PERIOD_DAYS} days", "too_long")


def period_days(start: date, end: date) -> int:
    """How many days a period covers, both ends included."""
    return (end - start).days + 1
