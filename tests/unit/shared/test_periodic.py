"""A periodic task: rounds every interval, a failing round does not stop the next."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from salesrail.periodic import Periodic


async def rounds_within(seconds: float, *, at_start: bool, fail_first: bool = False) -> int:
    ran = 0

    async def work() -> None:
        nonlocal ran
        ran += 1
        if fail_first and ran == 1:
            raise RuntimeError("the database is away")

    periodic = Periodic("t", work, interval_s=0.05, at_start=at_start)
    periodic.start()
    await asyncio.sleep(seconds)
    await periodic.stop()
    return ran


async def test_a_round_runs_at_start_only_when_asked() -> None:
    assert await rounds_within(0.02, at_start=True) == 1
    assert await rounds_within(0.02, at_start=False) == 0


async def test_rounds_repeat_and_a_failing_one_is_logged_and_does_not_stop_them() -> None:
    with capture_logs() as logs:
        ran = await rounds_within(0.13, at_start=True, fail_first=True)
    assert ran >= 2
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["t.failed"]


async def test_stopped_it_runs_no_more_rounds() -> None:
    ran = 0

    async def work() -> None:
        nonlocal ran
        ran += 1

    periodic = Periodic("t", work, interval_s=0.01, at_start=True)
    periodic.start()
    await asyncio.sleep(0.03)
    await periodic.stop()
    stopped_at = ran
    await asyncio.sleep(0.05)
    assert ran == stopped_at
