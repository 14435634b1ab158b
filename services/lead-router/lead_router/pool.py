"""The public pool: listing, claiming, releasing untouched leads, and manual reassignment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update

from lead_router import publishers
from lead_router.models import Lead, Rep
from lead_router.notifications import stage_deliveries
from lead_router.routing import release_slot, take_slot
from lead_router.service import history, route_lead
from salesrail.events.catalog import LeadClaimed, LeadReassigned
from salesrail.http.cursors import newest_first
from salesrail.http.problems import ProblemError, invalid_field
from salesrail.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from lead_router.context import LeadRouterContext


async def list_pool(
    uow: UnitOfWork,
    *,
    city: str | None,
    category: str | None,
    grade: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Lead], str | None]:
    """Newest first; `cursor` continues after the last lead of the previous page."""
    query = select(Lead).where(Lead.status == "pooled")
    if city is not None:
        query = query.where(or_(Lead.city_name == city, Lead.city == city))
    if category is not None:
        query = query.where(Lead.category == category)
    if grade is not None:
        query = query.where(Lead.grade == grade)
    return await newest_first(
        uow.session, query, at=Lead.received_at, id=Lead.id, cursor=cursor, limit=limit
    )


async def claim(uow: UnitOfWork, lead_id: str, *, rep_id: str) -> Lead:
    """Exactly one of many concurrent claimers wins; the others get 409. Caps apply."""
    rep = await uow.session.get(Rep, rep_id)
    if rep is None:
        raise ProblemError(404, f"no rep {rep_id}")
    if not await take_slot(uow, rep_id):
        raise ProblemError(
            409,
            f"rep {rep_id} is not active or has reached their cap",
            type="urn:salesrail:problem:cap-reached",
        )
    claimed = await uow.session.execute(
        update(Lead)
        .where(Lead.id == lead_id, Lead.status == "pooled")
        .values(
            status="routed",
            owner_id=rep_id,
            team_id=rep.team_id,
            assigned_at=uow.now(),
            route=f"claimed from the public pool by {rep_id}",
            route_rule=None,
        )
    )
    if not claimed.rowcount:
        # The transaction rolls back, giving the slot back too.
        raise ProblemError(
            409,
            "the lead is not in the pool (someone claimed it first)",
            type="urn:salesrail:problem:already-claimed",
        )
    lead = await uow.session.get(Lead, lead_id, populate_existing=True)
    assert lead is not None
    await uow.publish(LeadClaimed(lead_id=lead.id, owner_id=rep_id, team_id=rep.team_id))
    history(uow, lead, "claimed", rep_id, owner_id=rep_id)
    return lead


async def release_untouched(
    uow: UnitOfWork, *, context: LeadRouterContext, lead_id: str, owner_id: str | None, reason: str
) -> bool:
    """Back to the pool and routed again without the previous owner. Acts only if the lead
    still belongs to the owner the alert names (a stale alert changes nothing)."""
    lead = await uow.session.get(Lead, lead_id, with_for_update=True)
    if lead is None or lead.status != "routed" or lead.owner_id is None:
        return False
    if owner_id is not None and lead.owner_id != owner_id:
        return False
    previous = lead.owner_id
    await release_slot(uow, previous)
    lead.status, lead.owner_id, lead.team_id, lead.assigned_at = "pooled", None, None, None
    pooled = await uow.publish(
        publishers.lead_pooled(lead, reason=reason, previous_owner_id=previous)
    )
    await stage_deliveries(
        uow,
        publishers.tell_previous_owner(
            lead, previous, title="线索已收回公海 (lead released)", reason=reason
        ),
        request_id=pooled.id,
    )
    history(uow, lead, "released", "sla", previous_owner_id=previous, reason=reason)
    await route_lead(
        uow,
        lead,
        context=context,
        by="sla",
        exclude=frozenset({previous}),
        previous_owner_id=previous,
        announce_pool=False,
    )
    return True


async def reassign(uow: UnitOfWork, lead_id: str, *, to_rep: str, reason: str, by: str) -> Lead:
    lead = await uow.session.get(Lead, lead_id, with_for_update=True)
    if lead is None:
        raise ProblemError(404, f"no lead {lead_id}")
    if lead.status not in {"routed", "pooled"}:
        raise ProblemError(409, f"a {lead.status} lead cannot be reassigned")
    if lead.owner_id == to_rep:
        raise ProblemError(409, f"the lead already belongs to {to_rep}")
    rep = await uow.session.get(Rep, to_rep)
    if rep is None:
        raise invalid_field("owner_id", f"no rep {to_rep}", code="unknown")
    if not await take_slot(uow, to_rep):
        raise ProblemError(
            409,
            f"rep {to_rep} is not active or has reached their cap",
            type="urn:salesrail:problem:cap-reached",
        )
    previous = lead.owner_id
    if previous is not None:
        await release_slot(uow, previous)
    lead.owner_id, lead.team_id, lead.status, lead.assigned_at = (
        to_rep,
        rep.team_id,
        "routed",
        uow.now(),
    )
    lead.route = f"reassigned by {by}: {reason}"
    reassigned = await uow.publish(
        LeadReassigned(
            lead_id=lead.id,
            owner_id=to_rep,
            previous_owner_id=previous,
            reason=reason,
            by=by,
            team_id=rep.team_id,
        )
    )
    await stage_deliveries(
        uow,
        publishers.tell_owner(lead, title="线索转交给您 (lead reassigned to you)"),
        request_id=reassigned.id,
    )
    history(uow, lead, "reassigned", by, owner_id=to_rep, previous_owner_id=previous, reason=reason)
    return lead
