"""The scheduler's liveness, as /readyz sees it: alive, and looking again when it meant to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from salesrail.clock import FrozenClock
from sla_monitor import firing
from sla_monitor.scheduler import Scheduler


class _Db:
    def on_commit(self, _callback: Any) -> None:
        pass


@asynccontextmanager
async def _unit_of_work() -> AsyncIterator[Any]:
    yield object()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Batches run while the gate is open, and hang while it is closed."""
    opened = asyncio.Event()
    opened.set()

    async def fire_due(_uow: Any, _book: Any, *, limit: int) -> int:
        await opened.wait()
        return 0

    async def earliest_due(_uow: Any) -> None:
        return None

    monkeypatch.setattr(firing, "fire_due", fire_due)
    monkeypatch.setattr(firing, "earliest_due", earliest_due)
    return opened


def scheduler() -> Scheduler:
    return Scheduler(
        db=_Db(),  # type: ignore[arg-type]
        unit_of_work=_unit_of_work,
        book=None,  # type: ignore[arg-type]
        clock=FrozenClock(datetime(2026, 11, 23, tzinfo=UTC)),
        batch_size=10,
        max_sleep_s=0.05,
        stall_s=0.3,
    )


async def test_an_idle_scheduler_that_keeps_looking_is_healthy(gate: asyncio.Event) -> None:
    sched = scheduler()
    sched.start()
    await asyncio.sleep(0.5)  # longer than stall_s: it looked again every 50 ms
    assert await sched.healthy()
    await sched.stop()


async def test_a_scheduler_stuck_in_a_batch_far_past_its_next_look_is_unhealthy(
    gate: asyncio.Event,
) -> None:
    sched = scheduler()
    gate.clear()
    sched.start()
    await asyncio.sleep(0.1)
    assert await sched.healthy()  # within its grace
    await asyncio.sleep(0.4)
    assert sched.running and sched.stalled
    assert not await sched.healthy()
    gate.set()
    await asyncio.sleep(0.1)
    assert await sched.healthy()
    await sched.stop()


async def test_a_scheduler_whose_task_died_is_unhealthy(gate: asyncio.Event) -> None:
    sched = scheduler()
    sched.start()
    await asyncio.sleep(0.05)
    assert sched._task is not None
    sched._task.cancel()
    await asyncio.sleep(0.05)
    assert not sched.running
    assert not await sched.healthy()
    await sched.stop()
