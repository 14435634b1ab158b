"""Group commit for intake: concurrent leads share one transaction.

Each request does its own validation and enrichment, then queues its lead here. One task takes
everything queued at that moment (up to `max_batch`) and applies it in one unit of work: one
lock statement, one replay lookup, one duplicate query per lead, one read of the reps and
cursors the decisions need, one INSERT per table, one commit. Under no load a batch is a
single lead and nothing waits; under load the per-lead cost of the database falls with the
batch size. If a batch fails, its leads are applied one by one, so one bad lead fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import or_, select, text, tuple_
from sqlalchemy.exc import IntegrityError

from lead_router import publishers
from lead_router.duplicates import Candidate, CandidatePool, Probe, stored_candidates
from lead_router.models import Lead
from lead_router.routing import RepBook
from lead_router.service import (
    Intake,
    NewLead,
    apply_decision,
    facts_for_routing,
    history,
    mark_duplicate,
    score_lead,
)
from salesrail.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from lead_router.context import LeadRouterContext

log = structlog.get_logger(__name__)
UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


class IntakeBatcher:
    def __init__(
        self, *, unit_of_work: UnitOfWorkFactory, context: LeadRouterContext, max_batch: int = 100
    ) -> None:
        self.unit_of_work = unit_of_work
        self.context = context
        self.max_batch = max_batch
        self._queue: asyncio.Queue[NewLead] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="intake-batcher")

    async def stop(self) -> None:
        """Apply what is queued, then stop."""
        await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, item: NewLead) -> Intake:
        item.future = asyncio.get_running_loop().create_future()
        await self._queue.put(item)
        # The lead is applied even if the caller goes away: its transaction is shared.
        return await asyncio.shield(item.future)

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

    async def _process(self, batch: list[NewLead]) -> None:
        try:
            results = await self._apply(batch)
        except Exception as exc:
            if len(batch) > 1:
                log.warning("intake.batch_failed", size=len(batch), error=repr(exc))
                for item in batch:
                    await self._process([item])
                return
            await self._fail_alone(batch[0], exc)
            return
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    async def _fail_alone(self, item: NewLead, exc: Exception) -> None:
        if isinstance(exc, IntegrityError):
            # Another replica committed the same lead first: answer with its result.
            try:
                async with self.unit_of_work() as uow:
                    found = await _replays(uow, [item])
                existing = next((found[k] for k in item.replay_keys() if k in found), None)
                if existing is not None:
                    item.future.set_result(Intake(existing, created=False))
                    return
            except Exception as lookup_failed:
                exc = lookup_failed
        if not item.future.done():
            item.future.set_exception(exc)

    async def _apply(self, batch: Sequence[NewLead]) -> list[Intake]:
        context = self.context
        routing = context.rulebook.routing
        assert routing is not None
        window = timedelta(days=context.settings.duplicate_window_days)
        async with self.unit_of_work() as uow:
            await _lock_customers(uow, batch)
            replays = await _replays(uow, batch)
            results: list[Intake | None] = [None] * len(batch)
            fresh: list[tuple[int, NewLead]] = []
            for index, item in enumerate(batch):
                first = next((replays[k] for k in item.replay_keys() if k in replays), None)
                if first is not None:
                    results[index] = Intake(first, created=False)
                    continue
                for key in item.replay_keys():  # a repeat later in this same batch
                    replays[key] = item.lead
                score_lead(item.lead, context, now=uow.now())
                fresh.append((index, item))
            matches = {i: routing.match(facts_for_routing(item.lead)) for i, item in fresh}
            book = await RepBook.load(uow, matches.values())
            probes = {i: _probe(item, window) for i, item in fresh}
            # Earlier leads, stored or earlier in this batch.
            earlier = CandidatePool(await stored_candidates(uow.session, list(probes.values())))
            with uow.session.no_autoflush:
                for index, item in fresh:
                    lead = item.lead
                    duplicate = earlier.match(
                        probes[index], threshold=context.settings.duplicate_name_threshold
                    )
                    uow.session.add(lead)
                    await uow.publish(publishers.lead_received(lead))
                    history(
                        uow,
                        lead,
                        "received",
                        lead.created_by,
                        source=lead.source,
                        enrichment=item.enrichment_status,
                    )
                    if duplicate is not None:
                        await mark_duplicate(uow, lead, duplicate)
                    else:
                        decision = book.decide(matches[index])
                        await apply_decision(
                            uow,
                            lead,
                            matches[index],
                            decision,
                            version=routing.version,
                            by=lead.created_by,
                        )
                        earlier.add(_candidate(item))
                    results[index] = Intake(lead, created=True)
            await book.save(uow)
        return [r for r in results if r is not None]


def _probe(item: NewLead, window: timedelta) -> Probe:
    lead = item.lead
    return Probe(
        phone=lead.phone,
        company_key=lead.company_key,
        company_block=lead.company_block,
        since=lead.received_at - window,
        company_region=item.company_region,
    )


def _candidate(item: NewLead) -> Candidate:
    lead = item.lead
    return Candidate(
        lead_id=lead.id,
        owner_id=lead.owner_id,
        phone=lead.phone,
        company_key=lead.company_key,
        received_at=lead.received_at,
        company_region=item.company_region,
        company_block=lead.company_block,
    )


async def _lock_customers(uow: UnitOfWork, batch: Sequence[NewLead]) -> None:
    """Serialise intakes that could be the same customer (same phone, same company block),
    across batches and replicas; in sorted order, so two batches cannot deadlock. SQLite
    already serialises writers."""
    if uow.session.get_bind().dialect.name != "postgresql":
        return
    phones = {f"phone:{item.lead.phone}" for item in batch}
    keys = sorted(phones | {f"company:{item.lead.company_block}" for item in batch})
    await uow.session.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtext(k)) "
            "FROM (SELECT k FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS ordered"
        ),
        {"keys": keys},
    )


async def _replays(uow: UnitOfWork, batch: Sequence[NewLead]) -> dict[tuple[str, ...], Lead]:
    """Leads already stored under any of the batch's idempotency keys or external ids."""
    scoped = [i.scoped_key for i in batch if i.scoped_key is not None]
    external = [(i.lead.source, i.lead.external_id) for i in batch if i.lead.external_id]
    conditions: list[Any] = []
    if scoped:
        conditions.append(Lead.idempotency_key.in_(scoped))
    if external:
        conditions.append(tuple_(Lead.source, Lead.external_id).in_(external))
    if not conditions:
        return {}
    found: dict[tuple[str, ...], Lead] = {}
    for lead in (await uow.session.scalars(select(Lead).where(or_(*conditions)))).all():
        if lead.idempotency_key is not None:
            found[("key", lead.idempotency_key)] = lead
        if lead.external_id is not None:
            found[("ext", lead.source, lead.external_id)] = lead
    return found
