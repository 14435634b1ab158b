"""The scheduler: sleeps until the earliest deadline, then fires what is due, oldest first.

It wakes at the next `next_fire_at` (read from its index), earlier when a transaction commits
a clock due sooner, and at least every `max_sleep_s` (another replica's new clocks, a clock
that jumped in tests). With the database away it fires nothing, logs, and tries again with
back-off; everything due then fires when the database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from salesrail.clock import Clock
from salesrail.db.database import Database
from salesrail.unit_of_work import UnitOfWork
from sla_monitor import firing
from sla_monitor.policybook import PolicyBook
from sla_monitor.service import EARLIEST

log = structlog.get_logger(__name__)

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


class Scheduler:
    def __init__(
        self,
        *,
        db: Database,
        unit_of_work: UnitOfWorkFactory,
        book: PolicyBook,
        clock: Clock,
        batch_size: int,
        max_sleep_s: float,
        retry_s: float = 1.0,
        stall_s: float = 60.0,
    ) -> None:
        self.unit_of_work = unit_of_work
        self.book = book
        self.clock = clock
        self.batch_size = batch_size
        self.max_sleep_s = max_sleep_s
        self.retry_s = retry_s
        self.stall_s = stall_s
        self.fired_total = 0
        # Liveness (monotonic seconds): the loop promises to look again by `_expected_by`.
        self._beat = time.monotonic()
        self._expected_by = self._beat + max_sleep_s + stall_s
        self._wake = asyncio.Event()
        self._target: datetime | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        db.on_commit(self._after_commit)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._beat = time.monotonic()
        self._expected_by = self._beat + self.max_sleep_s + self.stall_s
        self._task = asyncio.create_task(self._run(), name="sla-scheduler")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self._stopping:
            return
        error = None if task.cancelled() else task.exception()
        log.error("scheduler.died", error=repr(error) if error else "cancelled")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def stalled(self) -> bool:
        """Has not looked again long after it meant to (a batch stuck, the loop blocked)."""
        return time.monotonic() > self._expected_by

    async def healthy(self) -> bool:
        """For /readyz: the task is alive and has kept to its own next look (a database
        outage is reported by the database check; the scheduler itself keeps retrying)."""
        return self.running and not self.stalled

    def _promise(self, delay: float) -> None:
        self._beat = time.monotonic()
        self._expected_by = self._beat + delay + self.stall_s

    def nudge(self, due: datetime | None = None) -> None:
        """Look again now (if `due` is before the instant the scheduler sleeps until)."""
        if due is None or self._target is None or due < self._target:
            self._wake.set()

    def _after_commit(self, session: Session) -> None:
        due = session.info.pop(EARLIEST, None)
        if due is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self.nudge, due)

    async def fire_once(self) -> int:
        """One batch in one transaction; how many clocks were claimed."""
        async with self.unit_of_work() as uow:
            return await firing.fire_due(uow, self.book, limit=self.batch_size)

    async def _fire_backlog(self) -> None:
        """Fire batches until none is due. While batches come back full (a backlog, e.g.
        after downtime) two run at once: SKIP LOCKED gives each its own clocks, the two
        together still the oldest, and one's database round trips overlap the other's work
        (one at a time, firing waited on PostgreSQL half the time)."""
        lanes = 1
        while not self._stopping:
            outcomes = await asyncio.gather(
                *(self.fire_once() for _ in range(lanes)), return_exceptions=True
            )
            claims = [c for c in outcomes if isinstance(c, int)]
            self.fired_total += sum(claims)
            # Both have ended, committed or not, before a failure is reported.
            failures = [f for f in outcomes if isinstance(f, BaseException)]
            if failures:
                raise failures[0]
            if not any(claims):
                return
            self._promise(0.0)  # each round is a sign of life
            lanes = 2 if all(c == self.batch_size for c in claims) else 1

    async def _run(self) -> None:
        backoff = self.retry_s
        while not self._stopping:
            self._wake.clear()
            self._promise(0.0)
            try:
                await self._fire_backlog()
                async with self.unit_of_work() as uow:
                    self._target = await firing.earliest_due(uow)
                backoff = self.retry_s
                delay = self.max_sleep_s
                if self._target is not None:
                    until = (self._target - self.clock.now()).total_seconds()
                    delay = min(max(until, 0.0), self.max_sleep_s)
            except Exception as exc:  # database away (or a bug): nothing fired, try again
                log.warning("scheduler.failed", error=repr(exc), retry_in_s=backoff)
                delay, backoff = backoff, min(backoff * 2, 30.0)
                self._target = None
            self._promise(delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
