"""Group commit: activities logged at the same moment share one transaction.

Each request prepares its activity alone (validation, memo extraction), then queues it here.
One task takes everything queued at that moment (up to `max_batch`) and applies it in one unit
of work: one read of the leads (locked), one INSERT per table, one UPDATE of the leads, one
commit. Under no load a batch is one activity and nothing waits; under load the database's
cost per activity falls with the batch size. A refusal (a ProblemError returned for an item)
concerns that item alone; if the batch itself fails, its items are applied one by one so one
bad item fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import structlog

from salesrail.http.problems import ProblemError

log = structlog.get_logger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Queued(Generic[Item, Result]):
    item: Item
    future: asyncio.Future[Result] = field(repr=False)


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        apply: Callable[[list[Item]], Awaitable[list[Result | ProblemError]]],
        *,
        max_batch: int = 100,
    ) -> None:
        self._apply = apply
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Queued[Item, Result]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="activity-group-commit")

    async def stop(self) -> None:
        """Apply what is queued, then stop."""
        await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, item: Item) -> Result:
        queued = _Queued[Item, Result](item, asyncio.get_running_loop().create_future())
        await self._queue.put(queued)
        # Applied even if the caller goes away: its transaction is shared with others.
        return await asyncio.shield(queued.future)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._process(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _process(self, batch: list[_Queued[Item, Result]]) -> None:
        try:
            results = await self._apply([queued.item for queued in batch])
        except Exception as exc:
            if len(batch) > 1:
                log.warning("activity.batch_failed", size=len(batch), error=repr(exc))
                for queued in batch:
                    await self._process([queued])
            elif not batch[0].future.done():
                batch[0].future.set_exception(exc)
            return
        for queued, result in zip(batch, results, strict=True):
            if queued.future.done():
                continue
            if isinstance(result, ProblemError):
                queued.future.set_exception(result)
            else:
                queued.future.set_result(result)
