"""Giving a lead an owner: the rule's candidates tried in order, caps held under concurrency."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from lead_router.assignment import Candidates, RepState, candidates, describe_pick
from lead_router.models import Cursor, Rep
from lead_router.routing_rules import Assign, RouteMatch, Strategy
from salesrail.db.upsert import insert_ignore
from salesrail.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Assignment:
    owner_id: str | None  # None: the public pool
    team_id: str | None
    trace: str


async def assign(
    uow: UnitOfWork, match: RouteMatch, *, exclude: frozenset[str] = frozenset()
) -> Assignment:
    """Take the first available candidate whose cap still holds, atomically; else the pool."""
    target = match.assign
    if target.pool:
        return Assignment(None, None, f"{match.explanation}; to the public pool")
    pool = await _rep_states(uow, target)
    cursor = await _next_cursor(uow, match) if target.strategy is Strategy.ROUND_ROBIN else 0
    found = candidates(target, pool, cursor=cursor, exclude=exclude)
    for rep_id in found.order:
        if await take_slot(uow, rep_id):
            team = next((r.team_id for r in pool if r.id == rep_id), None)
            return Assignment(rep_id, team, f"{match.explanation}; {describe_pick(rep_id, found)}")
    return Assignment(None, None, f"{match.explanation}; {describe_pick(None, _all_full(found))}")


async def take_slot(uow: UnitOfWork, rep_id: str) -> bool:
    """Count one more open lead for an active rep below their cap; False if that fails.

    One conditional UPDATE: two requests racing for the last slot cannot both win.
    """
    result = await uow.session.execute(
        update(Rep)
        .where(
            Rep.id == rep_id,
            Rep.status == "active",
            (Rep.cap.is_(None)) | (Rep.open_leads < Rep.cap),
        )
        .values(open_leads=Rep.open_leads + 1)
    )
    return bool(result.rowcount)


async def release_slot(uow: UnitOfWork, rep_id: str) -> None:
    await uow.session.execute(
        update(Rep)
        .where(Rep.id == rep_id, Rep.open_leads > 0)
        .values(open_leads=Rep.open_leads - 1)
    )


async def _rep_states(uow: UnitOfWork, target: Assign) -> list[RepState]:
    query = select(Rep)
    if target.team:
        query = query.where(Rep.team_id == target.team)
    else:
        query = query.where(Rep.id.in_([target.rep] if target.rep else list(target.reps or [])))
    reps = (await uow.session.scalars(query)).all()
    return [RepState(r.id, r.status, r.open_leads, r.cap, r.team_id) for r in reps]


async def _next_cursor(uow: UnitOfWork, match: RouteMatch) -> int:
    """Each round-robin decision takes the next position, even under concurrency."""
    key = f"rule:{match.rule.name}" if match.rule else "default"
    await insert_ignore(uow.session, Cursor, {"key": key, "position": 0}, conflict=["key"])
    position = await uow.session.scalar(
        update(Cursor)
        .where(Cursor.key == key)
        .values(position=Cursor.position + 1)
        .returning(Cursor.position)
    )
    return int(position or 1) - 1


def _all_full(found: Candidates) -> Candidates:
    # Every candidate lost its last slot to a concurrent request between read and update.
    extra = tuple(f"{rep_id} (no slot left)" for rep_id in found.order)
    return Candidates((), found.skipped + extra, found.strategy)
