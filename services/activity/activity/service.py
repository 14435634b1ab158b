"""Use cases of activity: each runs in one unit of work (state + outgoing events).

The lead view is kept from lead events in any order: an owner change arriving before the lead's
announcement starts a partial row, which the announcement completes, and an owner change older
than the one already applied changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import or_, select, update

from activity import dossier, publishers, rules
from activity.gates import Missing
from activity.masking import Masker, masked_activity
from activity.models import Lead, Override, RepTeam, StageChange
from activity.rulebook import Rulebook
from activity.schemas import StageChangeIn
from activity.timeline import Page, Position, read_page
from salesrail.auth import Principal
from salesrail.db.upsert import insert_ignore
from salesrail.events.catalog import LeadReceived
from salesrail.http.problems import ProblemError, invalid_field
from salesrail.unit_of_work import UnitOfWork

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
GATE_NOT_MET = "urn:salesrail:problem:stage-gate"
STAGE_CONFLICT = "urn:salesrail:problem:stage-conflict"

log = structlog.get_logger(__name__)


# --- the lead view -----------------------------------------------------------------------


async def record_lead(*, uow: UnitOfWork, received: LeadReceived) -> None:
    """Start following a new lead, or complete the row an earlier owner change started; a
    second announcement of a known lead changes nothing."""
    announced = {
        "company_name": received.company_name,
        "city": received.city,
        "category": received.category,
        "received_at": received.received_at,
        "updated_at": uow.now(),
    }
    if await insert_ignore(
        uow.session, Lead, _new_lead(received.lead_id) | announced, conflict=["lead_id"]
    ):
        return
    result = await uow.session.execute(
        update(Lead)
        .where(Lead.lead_id == received.lead_id, Lead.received_at.is_(None))
        .values(**announced)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        # Re-announced under a new event id: keep what later events already taught us.
        log.info("lead.already_known", lead_id=received.lead_id)


async def set_owner(
    *,
    uow: UnitOfWork,
    lead_id: str,
    owner_id: str | None,
    team_id: str | None,
    changed_at: datetime,
) -> None:
    """Record who owns a lead now (None: back in the public pool) and the owner's team."""
    owner = {
        "owner_id": owner_id,
        "team_id": team_id,
        "owner_changed_at": changed_at,
        "updated_at": uow.now(),
    }
    if await insert_ignore(uow.session, Lead, _new_lead(lead_id) | owner, conflict=["lead_id"]):
        return
    await uow.session.execute(
        update(Lead)
        .where(
            Lead.lead_id == lead_id,
            or_(Lead.owner_changed_at.is_(None), Lead.owner_changed_at <= changed_at),
        )
        .values(**owner)
        .execution_options(synchronize_session=False)
    )


async def remember_team(*, uow: UnitOfWork, rep_id: str, team_id: str, seen_at: datetime) -> None:
    """A rep's team as routing last said (claims and reassignments do not say it)."""
    row = {"rep_id": rep_id, "team_id": team_id, "seen_at": seen_at}
    if await insert_ignore(uow.session, RepTeam, row, conflict=["rep_id"]):
        return
    await uow.session.execute(
        update(RepTeam)
        .where(RepTeam.rep_id == rep_id, RepTeam.seen_at <= seen_at)
        .values(team_id=team_id, seen_at=seen_at)
        .execution_options(synchronize_session=False)
    )


async def team_of(*, uow: UnitOfWork, rep_id: str) -> str | None:
    return await uow.session.scalar(select(RepTeam.team_id).where(RepTeam.rep_id == rep_id))


def _new_lead(lead_id: str) -> dict[str, Any]:
    return {"lead_id": lead_id, "stage": rules.INITIAL_STAGE, "version": 0, "dossier": {}}


async def get_lead(*, unit_of_work: UnitOfWorkFactory, lead_id: str) -> Lead | None:
    async with unit_of_work() as uow:
        return await uow.session.get(Lead, lead_id)


async def read_timeline(
    *,
    unit_of_work: UnitOfWorkFactory,
    caller: Principal,
    lead_id: str,
    after: Position | None,
    limit: int,
) -> Page:
    """A page of the lead's timeline; names and phone numbers masked unless the caller is the
    owner's side (owner, the team's supervisor, admin)."""
    async with unit_of_work() as uow:
        lead = await uow.session.get(Lead, lead_id)
        if lead is None or not rules.may_see(caller, lead.owner_id):
            raise ProblemError(404, f"no lead {lead_id}")
        page = await read_page(
            uow.session, lead_id, after=after, limit=limit, kinds=_timeline_kinds(lead)
        )
    if rules.sees_personal_data(caller, lead.owner_id, lead.team_id):
        return page
    names = [*lead.dossier.get("key_people", [])]
    for item in page.items:
        if item["kind"] == "activity":
            names += item["key_people"] + item["details"].get("contacts", [])
    masker = Masker(names)
    return Page([_masked(item, masker) for item in page.items], page.next_cursor)


def _timeline_kinds(lead: Lead) -> tuple[str, ...]:
    """Every stage change bumps the lead's version; overrides without one are counted."""
    if lead.version > 0:
        return ("activity", "stage_change", "override")
    return ("activity", "override") if lead.dossier.get("overrides") else ("activity",)


def _masked(item: dict[str, Any], masker: Masker) -> dict[str, Any]:
    if item["kind"] == "activity":
        return masked_activity(item, masker)
    return {**item, "reason": masker.text(item["reason"])}


# --- stages ------------------------------------------------------------------------------


async def change_stage(
    *,
    unit_of_work: UnitOfWorkFactory,
    rulebook: Rulebook,
    caller: Principal,
    lead_id: str,
    request: StageChangeIn,
) -> tuple[StageChange, list[Missing]]:
    """Move a lead to another stage if its gates pass (or a supervisor overrides them)."""
    async with unit_of_work() as uow:
        lead = await uow.session.get(Lead, lead_id)
        if lead is None or not rules.may_act(caller, lead.owner_id, lead.team_id):
            raise ProblemError(404, f"no lead {lead_id}")
        try:
            move = rules.plan_move(lead.stage, request.to)
        except rules.SameStage as exc:
            raise ProblemError(409, str(exc), type=STAGE_CONFLICT) from exc
        if move.needs_reason and not request.reason:
            raise invalid_field("reason", f"{move.why_reason} needs a reason", code="missing")
        facts = dossier.gate_facts(lead.dossier, owner_id=lead.owner_id, reason=request.reason)
        missing = rulebook.gates.missing(move.gates, facts)
        if missing and not request.override:
            raise _gate_not_met(lead.stage, request.to, missing)
        if missing and not rules.may_override(caller, lead.owner_id, lead.team_id):
            raise ProblemError(403, "only the supervisor of the lead's team or admin may override")
        if missing and not request.reason:
            raise invalid_field("reason", "an override needs a reason", code="missing")

        now = uow.now()
        # Applies only to the version the decision was made on: of two changes from the same
        # stage at the same moment, one wins and the other is told.
        moved = await uow.session.execute(
            update(Lead)
            .where(Lead.lead_id == lead_id, Lead.version == lead.version)
            .values(stage=request.to, version=Lead.version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:
            raise ProblemError(
                409,
                "the lead's stage changed meanwhile: read it and try again",
                type=STAGE_CONFLICT,
            )
        change = StageChange(
            change_id=str(uuid.uuid4()),
            lead_id=lead_id,
            from_stage=lead.stage,
            to_stage=request.to,
            by=caller.subject,
            reason=request.reason,
            overridden=bool(missing),
            occurred_at=now,
        )
        uow.session.add(change)
        await uow.publish(publishers.stage_changed(change))
        if missing:
            uow.session.add(
                Override(
                    override_id=str(uuid.uuid4()),
                    lead_id=lead_id,
                    scope="stage_gate",
                    subject_id=change.change_id,
                    missing=[_missing_item(m) for m in missing],
                    reason=request.reason,
                    by=caller.subject,
                    role=caller.role.value,
                    occurred_at=now,
                )
            )
            await uow.publish(
                publishers.gate_overridden(change, missing=[m.field for m in missing])
            )
    return change, missing


def _missing_item(missing: Missing) -> dict[str, Any]:
    return {
        "stage": missing.stage,
        "check": missing.check.name,
        "field": missing.field,
        "message": missing.check.message,
    }


def _gate_not_met(current: str, target: str, missing: list[Missing]) -> ProblemError:
    return ProblemError(
        422,
        f"{target} needs what the lead does not show yet: "
        + ", ".join(m.check.name for m in missing),
        type=GATE_NOT_MET,
        title="Stage gate not met",
        errors=[
            {
                "field": m.field,
                "in": "lead",
                "message": m.check.message,
                "code": "missing",
                "stage": m.stage,
                "check": m.check.name,
            }
            for m in missing
        ],
        **{"from": current, "to": target},
    )
