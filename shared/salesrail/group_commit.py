"""Group commit: work items that arrive at the same moment share one transaction.

Each request prepares its item alone (validation, enrichment, extraction), then queues it here.
One task takes everything queued at that moment (up to `max_batch`) and hands the batch to
`apply`, which stores it in one unit of work. Under no load a batch is one item and nothing
waits; under load the database's cost per item falls with the batch size.

`apply` answers one result per item; an exception instance as a result fails that item alone
(e.g. a refusal). If `apply` raises, the batch's items are applied one by one, so one bad item
fails alone; an item that fails on its own goes to `recover` (when given), which may still
answer for it (e.g. another replica stored the same item first).

With `concurrency` > 1, that many batches may be applied at once: while one waits on the
database (its commit's fsync), the next is formed and applied, instead of the requests that
arrived meanwhile waiting idle. Only for an `apply` whose batches may overlap: the same
entities locked in a fixed order, so that two batches touching one entity apply one after
the other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import structlog

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
        apply: Callable[[list[Item]], Awaitable[Sequence[Result | BaseException]]],
        *,
        name: str,
        max_batch: int = 100,
        recover: Callable[[Item, Exception], Awaitable[Result]] | None = None,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.name = name
        self.max_batch = max_batch
        self.concurrency = concurrency
        self._apply = apply
        self._recover = recover
        self._queue: asyncio.Queue[_Queued[Item, Result]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"group-commit:{self.name}:{n}")
            for n in range(self.concurrency)
        ]

    async def stop(self) -> None:
        """Apply what is queued, then stop."""
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

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
                log.warning(
                    "group_commit.batch_failed", name=self.name, size=len(batch), error=repr(exc)
                )
                for queued in batch:
                    await self._process([queued])
                return
            await self._fail_alone(batch[0], exc)
            return
        for queued, result in zip(batch, results, strict=True):
            if queued.future.done():
                continue
            if isinstance(result, BaseException):
                queued.future.set_exception(result)
            else:
                queued.future.set_result(result)

    async def _fail_alone(self, queued: _Queued[Item, Result], exc: Exception) -> None:
        if self._recover is not None:
            try:
                result = await self._recover(queued.item, exc)
            except Exception as still_failing:
                exc = still_failing
            else:
                if not queued.future.done():
                    queued.future.set_result(result)
                return
        if not queued.future.done():
            queued.future.set_exception(exc)
