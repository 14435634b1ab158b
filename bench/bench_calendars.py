"""Business-calendar arithmetic in process, no I/O: `add` and `working_time_between` per second.

The calendar is sla-monitor's default business calendar (Asia/Shanghai, 09:00-12:00 and
13:30-18:00, Chinese statutory days). Starts are UTC instants spread over 2026 (as events'
`occurred_at`); the clocks service calls `add` once per clock it creates (issue 6: ≥ 5 k clocks/s,
so `add` is targeted at ≥ 50 k calls/s for 48 h). The figures are measured after a warm-up pass
over the same starts, so the per-day cache is full: a service running for a while is in that
state. `calendar_add_cold_per_s` is a fresh calendar's first pass.

Options: ``--set calendars.calls=100000``, ``calendars.max_seconds=10`` (a timed loop stops early
at this bound).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import Context, Figure

NAME = "calendars"
REQUIRES: tuple[str, ...] = ()


def _timed(fn: Callable[..., Any], args: list[tuple[Any, ...]], max_seconds: float) -> float:
    """Calls per second of fn over args, in order, until done or max_seconds."""
    start = time.perf_counter()
    stop_at = start + max_seconds
    calls = 0
    for calls, a in enumerate(args, 1):
        fn(*a)
        if (calls & 1023) == 0 and time.perf_counter() > stop_at:
            break
    return calls / (time.perf_counter() - start)


def run(ctx: Context) -> list[Figure]:
    from sla_monitor.calendars import BusinessCalendar, CalendarSpec, build_calendar

    calls = int(ctx.options.get("calendars.calls", 100_000))
    max_seconds = float(ctx.options.get("calendars.max_seconds", 10))
    rng = random.Random(6)
    year = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [year + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(calls)]
    spec = CalendarSpec(kind="business_hours")

    h48 = [(s, timedelta(hours=48)) for s in starts]
    cold = _timed(BusinessCalendar(spec).add, h48, max_seconds)
    calendar = build_calendar(spec)
    _timed(calendar.add, h48, max_seconds)  # warm-up: fills the per-day cache
    add_48h = _timed(calendar.add, h48, max_seconds)
    add_1000h = _timed(calendar.add, [(s, timedelta(hours=1000)) for s in starts], max_seconds)
    spans = [(s, calendar.add(s, timedelta(hours=48))) for s in starts[: calls // 4]]
    between = _timed(calendar.working_time_between, spans, max_seconds)

    setup = f"default business calendar, {calls:,} UTC starts over 2026"
    return [
        Figure("calendar_add_48h_per_s", add_48h, "calls/s", f"{setup}; target >= 50,000"),
        Figure("calendar_add_cold_per_s", cold, "calls/s", f"{setup}; empty day cache"),
        Figure("calendar_add_1000h_per_s", add_1000h, "calls/s", f"{setup}; ~190 days walked"),
        Figure("calendar_between_48h_per_s", between, "calls/s", f"{setup}; working_time_between"),
    ]
