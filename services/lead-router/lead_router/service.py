"""Lead intake: one door for every source. Replays answer the first result; a new lead is
normalised, checked for duplicates, enriched within its budget, scored, routed and stored
with its events in one transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from lead_router import publishers, rules
from lead_router.enrichment.facts import CompanyFacts
from lead_router.models import AnyLead, Lead, LeadHistory, LeadRecord
from lead_router.notifications import stage_deliveries
from lead_router.routing import Assignment, assign
from lead_router.routing_rules import LeadFacts, RouteMatch
from lead_router.schemas import LeadIn
from salesrail.http.problems import invalid_field
from salesrail.text.company_names import company_block, company_region, normalize_company_name
from salesrail.text.regions import resolve_city, resolve_province
from salesrail.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from lead_router.context import LeadRouterContext

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


@dataclass(frozen=True)
class Intake:
    lead: AnyLead
    created: bool


@dataclass
class NewLead:
    """A validated, enriched lead waiting for its transaction."""

    lead: LeadRecord
    scoped_key: str | None
    company_region: str | None
    enrichment_status: str

    def replay_keys(self) -> list[tuple[str, ...]]:
        keys: list[tuple[str, ...]] = []
        if self.scoped_key is not None:
            keys.append(("key", self.scoped_key))
        if self.lead.external_id is not None:
            keys.append(("ext", self.lead.source, self.lead.external_id))
        return keys


@dataclass(frozen=True)
class Place:
    city_name: str | None
    province: str | None


def locate(city: str) -> Place:
    """杭州 / 杭州市 / Hangzhou -> 杭州市, 浙江省; a province given as the city keeps it."""
    found = resolve_city(city)
    if found is not None:
        return Place(found.name, found.province)
    province = resolve_province(city)
    return Place(None, province.name if province else None)


async def receive_lead(
    *,
    unit_of_work: UnitOfWorkFactory,
    context: LeadRouterContext,
    lead_in: LeadIn,
    caller: str,
    idempotency_key: str | None,
) -> Intake:
    """Accept a lead once: a retry (same key, or same source + external id) gets the first."""
    scoped_key = rules.idempotency_scope(caller, idempotency_key) if idempotency_key else None
    replayable = scoped_key is not None or lead_in.external_id is not None
    # A retry is answered before the registry is asked again. A registry that answers at once
    # (offline) is simply asked again: the batch answers the retry (`intake._replays`), which
    # spares every keyed lead a transaction of its own.
    look_first = replayable and not context.enricher.answers_immediately
    if look_first:
        existing = await _replay_of(unit_of_work, lead_in, scoped_key)
        if existing is not None:
            return Intake(existing, created=False)
    try:
        received_at = rules.effective_received_at(lead_in.received_at, now=context.clock.now())
    except rules.FutureReceivedAt as exc:
        # A retry of an accepted lead still gets the first result, whatever it says now.
        existing = (
            await _replay_of(unit_of_work, lead_in, scoped_key)
            if replayable and not look_first
            else None
        )
        if existing is not None:
            return Intake(existing, created=False)
        raise invalid_field("received_at", str(exc), code="future") from exc

    # Outside any transaction: a slow registry must not hold database locks.
    lead_id = str(uuid.uuid4())
    outcome = await context.enricher.enrich(
        lead_id=lead_id,
        company_name=lead_in.company_name,
        credit_code=None,
        budget_s=context.settings.enrichment_budget_s,
    )
    place = locate(lead_in.city)
    company_key = normalize_company_name(lead_in.company_name)
    region = company_region(lead_in.company_name)
    lead = LeadRecord(
        id=lead_id,
        **lead_in.model_dump(exclude={"received_at"}),
        idempotency_key=scoped_key,
        company_key=company_key,
        company_block=company_block(company_key),
        company_region=region or "",
        city_name=place.city_name,
        province=place.province,
        enrichment=outcome.facts.model_dump(mode="json") if outcome.facts else {},
        enrichment_status=outcome.status,
        received_at=received_at,
        created_at=context.clock.now(),
        created_by=caller,
        status="pending",
        route="",
    )
    return await context.intake.submit(
        NewLead(
            lead=lead,
            scoped_key=scoped_key,
            company_region=region,
            enrichment_status=outcome.status,
        )
    )


def score_lead(lead: AnyLead, context: LeadRouterContext, *, now: Any) -> None:
    scoring = context.rulebook.scoring
    assert scoring is not None
    card = scoring.score(
        {
            "source": lead.source,
            "city": lead.city_name or lead.city,
            "province": lead.province,
            "category": lead.category,
            "purchase_timeframe": lead.purchase_timeframe,
            "email": lead.email,
            "budget": lead.budget,
            "tags": lead.tags,
            **rules.company_facts(lead.enrichment, now=now),
        }
    )
    lead.score, lead.grade, lead.qualified = card.score, card.grade, card.qualified
    lead.score_reasons = card.reasons
    lead.rules_version = scoring.version


async def route_lead(
    uow: UnitOfWork,
    lead: Lead,
    *,
    context: LeadRouterContext,
    by: str,
    exclude: frozenset[str] = frozenset(),
    previous_owner_id: str | None = None,
    announce_pool: bool = True,
) -> None:
    """Decide with the active routing rules and give the lead an owner, or pool it.
    `announce_pool=False` when the caller already announced the lead's return to the pool."""
    routing = context.rulebook.routing
    assert routing is not None
    match = routing.match(facts_for_routing(lead))
    decision = await assign(uow, match, exclude=exclude)
    await apply_decision(
        uow,
        lead,
        match,
        decision,
        version=routing.version,
        by=by,
        previous_owner_id=previous_owner_id,
        announce_pool=announce_pool,
    )


def facts_for_routing(lead: AnyLead) -> LeadFacts:
    return LeadFacts(
        city=lead.city_name,
        province=lead.province,
        category=lead.category,
        grade=lead.grade,
        source=lead.source,
        score=lead.score,
        tags=tuple(lead.tags),
    )


async def apply_decision(
    uow: UnitOfWork,
    lead: AnyLead,
    match: RouteMatch,
    decision: Assignment,
    *,
    version: int,
    by: str,
    previous_owner_id: str | None = None,
    announce_pool: bool = True,
    history_rows: list[dict[str, Any]] | None = None,
) -> None:
    """Record a routing decision on the lead, with its events and history (added to the
    session, or to `history_rows` when the caller inserts a batch's rows itself)."""
    lead.route = decision.trace
    lead.route_rule = match.rule.name if match.rule else None
    lead.owner_id, lead.team_id = decision.owner_id, decision.team_id
    if decision.owner_id is None:
        lead.status, lead.assigned_at = "pooled", None
        if announce_pool:
            await uow.publish(
                publishers.lead_pooled(
                    lead, reason=decision.trace, previous_owner_id=previous_owner_id
                )
            )
        _history(uow, lead, "pooled", by, history_rows, route=decision.trace, rules_version=version)
        return
    lead.status, lead.assigned_at = "routed", uow.now()
    routed = await uow.publish(publishers.lead_routed(lead, previous_owner_id=previous_owner_id))
    await stage_deliveries(
        uow, publishers.tell_owner(lead, title="新线索分配给您 (new lead)"), request_id=routed.id
    )
    _history(
        uow,
        lead,
        "routed",
        by,
        history_rows,
        owner_id=lead.owner_id,
        route=decision.trace,
        rules_version=version,
    )


async def mark_duplicate(
    uow: UnitOfWork,
    lead: AnyLead,
    duplicate: Any,
    *,
    history_rows: list[dict[str, Any]] | None = None,
) -> None:
    """Linked to the first lead and its owner; never a second rep for the same customer."""
    lead.status = "duplicate"
    lead.duplicate_of = duplicate.lead_id
    lead.owner_id = duplicate.owner_id
    how = (
        "same phone"
        if duplicate.matched_on == "phone"
        else f"same company ({duplicate.similarity:.0f}% similar)"
    )
    lead.route = f"duplicate of lead {duplicate.lead_id}: {how}"
    linked = await uow.publish(
        publishers.lead_duplicate(
            lead, matched_on=duplicate.matched_on, similarity=duplicate.similarity
        )
    )
    if lead.owner_id is not None:
        await stage_deliveries(
            uow,
            publishers.tell_owner(lead, title="您的客户再次来询 (returning customer)"),
            request_id=linked.id,
        )
    _history(
        uow,
        lead,
        "duplicate",
        "system",
        history_rows,
        duplicate_of=duplicate.lead_id,
        matched_on=how,
    )


async def _replay_of(
    unit_of_work: UnitOfWorkFactory, lead_in: LeadIn, scoped_key: str | None
) -> Lead | None:
    async with unit_of_work() as uow:
        return await _find_replay(uow, lead_in, scoped_key)


async def _find_replay(uow: UnitOfWork, lead_in: LeadIn, scoped_key: str | None) -> Lead | None:
    matches = []
    if scoped_key is not None:
        matches.append(Lead.idempotency_key == scoped_key)
    if lead_in.external_id is not None:
        matches.append((Lead.source == lead_in.source) & (Lead.external_id == lead_in.external_id))
    if not matches:
        return None
    return await uow.session.scalar(select(Lead).where(or_(*matches)).limit(1))


async def _rescore(
    uow: UnitOfWork, lead: Lead, context: LeadRouterContext, facts: CompanyFacts
) -> None:
    before = (lead.score, lead.grade)
    lead.enrichment = facts.model_dump(mode="json")
    lead.enrichment_status = "complete"
    score_lead(lead, context, now=uow.now())
    history(uow, lead, "rescored", "enrichment", score=lead.score, grade=lead.grade)
    if (lead.score, lead.grade) != before:
        await uow.publish(publishers.lead_rescored(lead, previous=before))


def history(uow: UnitOfWork, lead: AnyLead, kind: str, by: str, **detail: Any) -> None:
    uow.session.add(LeadHistory(lead_id=lead.id, at=uow.now(), kind=kind, by=by, detail=detail))


def history_row(lead: AnyLead, kind: str, by: str, *, at: Any, **detail: Any) -> dict[str, Any]:
    """A `lead_history` row as a batch inserts it (the columns of `LeadHistory`, no `seq`)."""
    return {"lead_id": lead.id, "at": at, "kind": kind, "by": by, "detail": detail}


def _history(
    uow: UnitOfWork,
    lead: AnyLead,
    kind: str,
    by: str,
    rows: list[dict[str, Any]] | None,
    **detail: Any,
) -> None:
    if rows is None:
        history(uow, lead, kind, by, **detail)
    else:
        rows.append(history_row(lead, kind, by, at=uow.now(), **detail))


async def get_lead(
    *, unit_of_work: UnitOfWorkFactory, lead_id: str
) -> tuple[Lead, list[LeadHistory]] | None:
    async with unit_of_work() as uow:
        lead = await uow.session.get(Lead, lead_id)
        if lead is None:
            return None
        entries = await uow.session.scalars(
            select(LeadHistory).where(LeadHistory.lead_id == lead_id).order_by(LeadHistory.seq)
        )
        return lead, list(entries.all())


async def apply_late_facts(
    *,
    unit_of_work: UnitOfWorkFactory,
    context: LeadRouterContext,
    lead_id: str,
    facts: CompanyFacts,
) -> None:
    """Registry facts that came after the budget: store them, re-score, say so if it changed."""
    for attempt in range(5):  # the intake transaction may not have committed yet
        async with unit_of_work() as uow:
            lead = await uow.session.get(Lead, lead_id, with_for_update=True)
            if lead is not None:
                await _rescore(uow, lead, context, facts)
                return
        await asyncio.sleep(0.2 * (attempt + 1))
