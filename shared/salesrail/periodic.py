"""A background task that runs a round of work every interval until it is stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class Periodic:
    """Runs `work` every `interval_s` (first at start when `at_start`); a failing round is
    logged as `<name>.failed` and the next one runs (the database may be away for a while)."""

    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[object]],
        *,
        interval_s: float,
        at_start: bool = False,
    ) -> None:
        self.name = name
        self.work = work
        self.interval_s = interval_s
        self.at_start = at_start
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        # A round in a worker thread is not interrupted: it finishes what it has in hand.
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        if not self.at_start:
            await asyncio.sleep(self.interval_s)
        while True:
            try:
                await self.work()
            except Exception as exc:
                log.warning(f"{self.name}.failed", error=repr(exc))
            await asyncio.sleep(self.interval_s)
