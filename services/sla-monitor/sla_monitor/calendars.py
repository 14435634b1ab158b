"""Business-calendar arithmetic for SLA clocks (pure, no I/O).

A calendar answers "when is `duration` of working time after `start`?" and the inverse, "how much
working time lies between two instants?". Instants are aware datetimes; results are UTC.

Chinese statutory days come from `chinese-calendar` (holidays *and* 调休 make-up working days,
published yearly by the State Council; the installed data covers 2004-2026). For a year it does
not cover, the holidays come from `holidays.China` instead: it computes the statutory holidays
for any year but knows no make-up working days, so such a year counts make-up Saturdays/Sundays
as days off (deadlines come out later, never earlier, than the official schedule). Each such
year is logged once per process as `sla_calendar_statutory_fallback`; upgrading
`chinese-calendar` once the State Council publishes the year's schedule removes the fallback.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal, Protocol, TypeVar
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays
import structlog
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

log = structlog.get_logger(__name__)

ZERO = timedelta(0)
ONE_DAY = timedelta(days=1)
MIDNIGHT = time(0)  # as the end of a working period it means 24:00

Period = tuple[time, time]
Weekday = Annotated[int, Field(ge=0, le=6)]
_T = TypeVar("_T", int, date)


class CalendarSpec(BaseModel):
    """A calendar as written in the policies YAML; frozen so it can key the calendar cache."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["always", "business_hours"] = "always"
    timezone: str = "Asia/Shanghai"
    # Local wall-clock periods of a working day; YAML gives "09:00-12:00" ("24:00" ends the day).
    working_hours: tuple[Period, ...] = ((time(9), time(12)), (time(13, 30), time(18)))
    weekdays: tuple[Weekday, ...] = (0, 1, 2, 3, 4)  # Mon=0; statutory days override these
    statutory: Literal["cn", "none"] = "cn"
    extra_holidays: tuple[date, ...] = ()
    extra_workdays: tuple[date, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (KeyError, ValueError, OSError):  # not found, malformed key, a directory
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("working_hours", mode="before")
    @classmethod
    def _parse_periods(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return tuple(_parse_period(item) if isinstance(item, str) else item for item in value)
        return value

    @field_validator("working_hours")
    @classmethod
    def _ordered_periods(cls, value: tuple[Period, ...]) -> tuple[Period, ...]:
        if not value:
            raise ValueError("at least one working period is needed")
        previous_end = MIDNIGHT
        for i, (start, end) in enumerate(value):
            if start.tzinfo or end.tzinfo:
                raise ValueError("working hours are local wall times: no UTC offset")
            if start < previous_end or (i and previous_end == MIDNIGHT):
                raise ValueError("working periods must be in order and must not overlap")
            if end <= start and end != MIDNIGHT:
                raise ValueError(f"working period {_fmt_period((start, end))} ends too early")
            previous_end = end
        return value

    @field_validator("weekdays", "extra_holidays", "extra_workdays")
    @classmethod
    def _sorted_unique(cls, value: tuple[_T, ...]) -> tuple[_T, ...]:
        return tuple(sorted(set(value)))

    @field_serializer("working_hours")
    def _dump_periods(self, value: tuple[Period, ...]) -> list[str]:
        return [_fmt_period(p) for p in value]  # the YAML form, so GET shows what PUT took

    @model_validator(mode="after")
    def _consistent(self) -> CalendarSpec:
        if self.kind == "business_hours" and not self.weekdays:
            raise ValueError("a business_hours calendar needs at least one weekday")
        both = set(self.extra_holidays) & set(self.extra_workdays)
        if both:
            raise ValueError(f"dates both extra holidays and extra workdays: {sorted(both)}")
        return self

    @property
    def working_day_length(self) -> timedelta:
        """Nominal working time of one working day (24 h for `always`): what "1 d" means."""
        if self.kind == "always":
            return ONE_DAY
        return sum((_wall_length(p) for p in self.working_hours), ZERO)


class Calendar(Protocol):
    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant `duration` of working time after `start` (UTC)."""
        ...

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time in [start, end); zero if end <= start."""
        ...

    def is_working_day(self, day: date) -> bool: ...

    def cutoff(self, day: date, at: time) -> datetime:
        """Local wall time `at` on `day`, as UTC."""
        ...

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        ...

    def local_date(self, moment: datetime) -> date:
        """The calendar day `moment` falls on, in the calendar's time zone."""
        ...


class ElapsedCalendar:
    """Plain elapsed time: every instant counts, every day is a working day."""

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz

    def add(self, start: datetime, duration: timedelta) -> datetime:
        return _utc(start) + _not_negative(duration)

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        return max(ZERO, _utc(end) - _utc(start))

    def is_working_day(self, day: date) -> bool:
        return True

    def cutoff(self, day: date, at: time) -> datetime:
        return _cutoff(self._tz, day, at)

    def next_working_day(self, day: date) -> date:
        return day + ONE_DAY

    def local_date(self, moment: datetime) -> date:
        return _utc(moment).astimezone(self._tz).date()


# A day's working periods as UTC instants, in order, and their total length.
_Day = tuple[tuple[tuple[datetime, datetime], ...], timedelta]
_DAY_OFF: _Day = ((), ZERO)


class BusinessCalendar:
    """Working hours on working days, in one IANA zone."""

    def __init__(self, spec: CalendarSpec) -> None:
        self._tz = ZoneInfo(spec.timezone)
        self._hours = spec.working_hours
        self._weekdays = frozenset(spec.weekdays)
        self._statutory = spec.statutory == "cn"
        self._extra_off = frozenset(spec.extra_holidays)
        self._extra_on = frozenset(spec.extra_workdays)
        # ~11 years of days per calendar: clocks look a few weeks ahead, so this rarely evicts.
        self._day = functools.lru_cache(maxsize=4096)(self._compute_day)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        at = _utc(start)
        left = _not_negative(duration)
        if not left:
            return at
        day = at.astimezone(self._tz).date()
        while True:
            periods, total = self._day(day)
            # A day wholly after `at` that the duration outlasts is skipped in one step.
            if periods and periods[0][0] >= at and left > total:
                left -= total
            else:
                for begin, end in periods:
                    if end <= at:
                        continue
                    begin = max(begin, at)  # a clock starts counting at the next working moment
                    if left <= end - begin:
                        return begin + left  # at most `end`: due at 12:00, not after lunch
                    left -= end - begin
            day += ONE_DAY

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        lo, hi = _utc(start), _utc(end)
        if hi <= lo:
            return ZERO
        worked = ZERO
        day, last = lo.astimezone(self._tz).date(), hi.astimezone(self._tz).date()
        while day <= last:
            periods, total = self._day(day)
            if periods and periods[0][0] >= lo and periods[-1][1] <= hi:
                worked += total
            else:
                for begin, stop in periods:
                    overlap = min(stop, hi) - max(begin, lo)
                    if overlap > ZERO:
                        worked += overlap
            day += ONE_DAY
        return worked

    def is_working_day(self, day: date) -> bool:
        if day in self._extra_off:
            return False
        if day in self._extra_on:
            return True
        if self._statutory:
            days_off, make_up_days = _cn_statutory(day.year)
            if day in days_off:
                return False
            if day in make_up_days:
                return True
        return day.weekday() in self._weekdays

    def cutoff(self, day: date, at: time) -> datetime:
        return _cutoff(self._tz, day, at)

    def next_working_day(self, day: date) -> date:
        day += ONE_DAY
        while not self.is_working_day(day):  # ends: the spec names at least one weekday
            day += ONE_DAY
        return day

    def local_date(self, moment: datetime) -> date:
        return _utc(moment).astimezone(self._tz).date()

    def _compute_day(self, day: date) -> _Day:
        if not self.is_working_day(day):
            return _DAY_OFF
        periods: list[tuple[datetime, datetime]] = []
        for start, end in self._hours:
            begin = _cutoff(self._tz, day, start)
            stop = _cutoff(self._tz, day + ONE_DAY if end == MIDNIGHT else day, end)
            if periods:  # a wall time in a DST gap can land after the next one: keep them apart
                begin = max(begin, periods[-1][1])
            if stop > begin:
                periods.append((begin, stop))
        return tuple(periods), sum((stop - begin for begin, stop in periods), ZERO)


@functools.lru_cache(maxsize=256)
def build_calendar(spec: CalendarSpec) -> Calendar:
    """The calendar of `spec`; one instance per distinct spec, so its day cache is shared."""
    if spec.kind == "always":
        return ElapsedCalendar(ZoneInfo(spec.timezone))
    return BusinessCalendar(spec)


ALWAYS: Calendar = build_calendar(CalendarSpec())


def remaining(calendar: Calendar, now: datetime, due: datetime) -> timedelta:
    """Working time left until `due`; negative (working time overdue) once `now` is past it."""
    if due >= now:
        return calendar.working_time_between(now, due)
    return -calendar.working_time_between(due, now)


def describe_remaining(td: timedelta, *, day: timedelta = ONE_DAY) -> str:
    """'1 d 3 h 20 min of working time' (whole minutes, rounded down); 'overdue by ...' when
    negative. Pass `day=spec.working_day_length` to count days as working days."""
    if td < ZERO:
        return "overdue by " + describe_remaining(-td, day=day)
    minutes = math.floor(td / timedelta(minutes=1))
    if td and not minutes:
        return "< 1 min of working time"
    per_day = round(day / timedelta(minutes=1))
    days, minutes = divmod(minutes, per_day)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes or not parts else []
    return " ".join(parts) + " of working time"


@functools.cache
def _cn_statutory(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(statutory days off, make-up working days) of a year; cached, so logged once a year."""
    if _CC_YEARS[0] <= year <= _CC_YEARS[1]:
        return (
            frozenset(d for d in chinese_calendar.holidays if d.year == year),
            frozenset(d for d in chinese_calendar.workdays if d.year == year),
        )
    log.warning(
        "sla_calendar_statutory_fallback",
        year=year,
        covered=f"{_CC_YEARS[0]}-{_CC_YEARS[1]}",
        detail="chinese-calendar has no data for this year: holidays from holidays.China, "
        "no 调休 make-up working days",
    )
    return frozenset(holidays.China(years=year)), frozenset()


_CC_YEARS = (min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year)


def _utc(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"an aware datetime is needed, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _not_negative(duration: timedelta) -> timedelta:
    if duration < ZERO:
        raise ValueError(f"a clock's duration cannot be negative, got {duration}")
    return duration


def _cutoff(tz: ZoneInfo, day: date, at: time) -> datetime:
    # fold=0: an ambiguous wall time is its first occurrence, a skipped one is read before the gap
    return datetime.combine(day, at.replace(tzinfo=None), tz).astimezone(UTC)


def _wall_length(period: Period) -> timedelta:
    start, end = period
    end_day = date.min + ONE_DAY if end == MIDNIGHT else date.min
    return datetime.combine(end_day, end) - datetime.combine(date.min, start)


def _parse_period(text: str) -> Period:
    start, sep, end = (part.strip() for part in text.partition("-"))
    if not sep:
        raise ValueError(f"a working period is written 'HH:MM-HH:MM', got {text!r}")
    return time.fromisoformat(start), MIDNIGHT if end == "24:00" else time.fromisoformat(end)


def _fmt_period(period: Period) -> str:
    start, end = period
    return f"{start:%H:%M}-{'24:00' if end == MIDNIGHT else f'{end:%H:%M}'}"
