"""Use cases of lead-router: each runs in one unit of work (state + outgoing events)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from lead_router import publishers, rules
from lead_router.models import Lead
from lead_router.schemas import LeadIn
from salesrail.http.problems import ProblemError
from salesrail.unit_of_work import UnitOfWork

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


@dataclass(frozen=True)
class Intake:
    lead: Lead
    created: bool


async def receive_lead(
    *,
    unit_of_work: UnitOfWorkFactory,
    lead_in: LeadIn,
    caller: str,
    idempotency_key: str | None,
) -> Intake:
    """Accept a lead once: a retry (same key, or same source + external id) gets the first."""
    scoped_key = rules.idempotency_scope(caller, idempotency_key) if idempotency_key else None
    try:
        async with unit_of_work() as uow:
            existing = await _find_replay(uow, lead_in, scoped_key)
            if existing is not None:
                return Intake(existing, created=False)
            try:
                received_at = rules.effective_received_at(lead_in.received_at, now=uow.now())
            except rules.FutureReceivedAt as exc:
                raise ProblemError(
                    422, str(exc), type="urn:salesrail:problem:validation",
                    title="Invalid request",
                    errors=[{"field": "received_at", "in": "body", "message": str(exc),
                             "code": "future"}],
                ) from exc
            lead = Lead(
                id=str(uuid.uuid4()),
                **lead_in.model_dump(exclude={"received_at"}),
                idempotency_key=scoped_key,
                status="pending",
                owner_id=None,
                score=None,
                grade=None,
                route="not routed yet",
                received_at=received_at,
                created_at=uow.now(),
                created_by=caller,
            )
            uow.session.add(lead)
            await uow.session.flush()
            await uow.publish(publishers.lead_received(lead))
            return Intake(lead, created=True)
    except IntegrityError:
        # A concurrent retry of the same lead committed first: answer with its result.
        async with unit_of_work() as uow:
            existing = await _find_replay(uow, lead_in, scoped_key)
        if existing is None:
            raise
        return Intake(existing, created=False)


async def _find_replay(uow: UnitOfWork, lead_in: LeadIn, scoped_key: str | None) -> Lead | None:
    matches = []
    if scoped_key is not None:
        matches.append(Lead.idempotency_key == scoped_key)
    if lead_in.external_id is not None:
        matches.append((Lead.source == lead_in.source) & (Lead.external_id == lead_in.external_id))
    if not matches:
        return None
    return await uow.session.scalar(select(Lead).where(or_(*matches)).limit(1))


async def get_lead(*, unit_of_work: UnitOfWorkFactory, lead_id: str) -> Lead | None:
    async with unit_of_work() as uow:
        return await uow.session.get(Lead, lead_id)
