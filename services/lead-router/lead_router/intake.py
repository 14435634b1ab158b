"""Group commit for intake: concurrent leads share one transaction.

Each request does its own validation and enrichment, then queues its lead here (see
salesrail.group_commit). A batch is applied in one unit of work: one lock statement, one replay
lookup, one duplicate query, one read of the reps and cursors the decisions need, one INSERT
per table, one commit. If a batch fails, its leads are applied one by one, so one bad lead
fails alone; one that loses a race with another replica answers with the winner's lead.
"""

from __future__ import annotations

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
from salesrail.group_commit import GroupCommit
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
        self._commit: GroupCommit[NewLead, Intake] = GroupCommit(
            self._apply, name="intake", max_batch=max_batch, recover=self._recover
        )

    def start(self) -> None:
        self._commit.start()

    async def stop(self) -> None:
        """Apply what is queued, then stop."""
        await self._commit.stop()

    async def submit(self, item: NewLead) -> Intake:
        return await self._commit.submit(item)

    async def _recover(self, item: NewLead, exc: Exception) -> Intake:
        """Another replica committed the same lead first: answer with its result."""
        if isinstance(exc, IntegrityError):
            async with self.unit_of_work() as uow:
                found = await _replays(uow, [item])
            existing = next((found[k] for k in item.replay_keys() if k in found), None)
            if existing is not None:
                return Intake(existing, created=False)
        raise exc

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
