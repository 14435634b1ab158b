"""Giving a lead an owner: the rule's candidates tried in order, caps held under concurrency.

A `RepBook` holds the reps and round-robin cursors a set of decisions needs, read once with
row locks (FOR UPDATE on PostgreSQL; SQLite serialises writers anyway), changed in memory and
written back once: a batch of intakes costs the same few statements as one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from sqlalchemy import or_, select, update

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


def cursor_key(match: RouteMatch) -> str:
    return f"rule:{match.rule.name}" if match.rule else "default"


class RepBook:
    def __init__(self, reps: dict[str, RepState], cursors: dict[str, int]) -> None:
        self._reps = reps
        self._cursors = cursors
        self._changed: set[str] = set()

    @classmethod
    async def load(cls, uow: UnitOfWork, matches: Iterable[RouteMatch]) -> RepBook:
        wanted = [m for m in matches if not m.assign.pool]
        rep_ids = {r for m in wanted for r in _named_reps(m.assign)}
        teams = {m.assign.team for m in wanted if m.assign.team}
        reps: dict[str, RepState] = {}
        if rep_ids or teams:
            rows = await uow.session.scalars(
                select(Rep)
                .where(or_(Rep.id.in_(rep_ids), Rep.team_id.in_(teams)))
                .order_by(Rep.id)
                .with_for_update()
            )
            reps = {r.id: RepState(r.id, r.status, r.open_leads, r.cap, r.team_id) for r in rows}
        keys = {cursor_key(m) for m in wanted if m.assign.strategy is Strategy.ROUND_ROBIN}
        cursors = await _locked_cursors(uow, keys)
        missing = keys - cursors.keys()
        if missing:  # a rule's first round: create its cursor, whoever gets there first
            for key in sorted(missing):
                await insert_ignore(
                    uow.session, Cursor, {"key": key, "position": 0}, conflict=["key"]
                )
            cursors |= await _locked_cursors(uow, missing)
        return cls(reps, cursors)

    def decide(self, match: RouteMatch, *, exclude: frozenset[str] = frozenset()) -> Assignment:
        """Take the first available candidate whose cap still holds; else the pool."""
        target = match.assign
        if target.pool:
            return Assignment(None, None, f"{match.explanation}; to the public pool")
        pool = self._pool(target)
        cursor = self._next_cursor(match) if target.strategy is Strategy.ROUND_ROBIN else 0
        found = candidates(target, pool, cursor=cursor, exclude=exclude)
        for rep_id in found.order:
            if self._take(rep_id):
                team = self._reps[rep_id].team_id
                trace = f"{match.explanation}; {describe_pick(rep_id, found)}"
                return Assignment(rep_id, team, trace)
        trace = f"{match.explanation}; {describe_pick(None, _all_full(found))}"
        return Assignment(None, None, trace)

    async def save(self, uow: UnitOfWork) -> None:
        if self._changed:
            await uow.session.execute(
                update(Rep).execution_options(synchronize_session=False),
                [{"id": i, "open_leads": self._reps[i].open_leads} for i in sorted(self._changed)],
            )
            self._changed.clear()
        if self._cursors:
            await uow.session.execute(
                update(Cursor).execution_options(synchronize_session=False),
                [{"key": k, "position": p} for k, p in sorted(self._cursors.items())],
            )

    def _pool(self, target: Assign) -> list[RepState]:
        if target.team:
            return [r for r in self._reps.values() if r.team_id == target.team]
        return [self._reps[r] for r in _named_reps(target) if r in self._reps]

    def _next_cursor(self, match: RouteMatch) -> int:
        key = cursor_key(match)
        position = self._cursors.get(key, 0)
        self._cursors[key] = position + 1
        return position

    def _take(self, rep_id: str) -> bool:
        rep = self._reps[rep_id]
        if rep.unavailable_because() is not None:
            return False
        self._reps[rep_id] = replace(rep, open_leads=rep.open_leads + 1)
        self._changed.add(rep_id)
        return True


async def assign(
    uow: UnitOfWork, match: RouteMatch, *, exclude: frozenset[str] = frozenset()
) -> Assignment:
    """One decision, read and written at once (release, re-route, simulation)."""
    book = await RepBook.load(uow, [match])
    decision = book.decide(match, exclude=exclude)
    await book.save(uow)
    return decision


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
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def release_slot(uow: UnitOfWork, rep_id: str) -> None:
    await uow.session.execute(
        update(Rep)
        .where(Rep.id == rep_id, Rep.open_leads > 0)
        .values(open_leads=Rep.open_leads - 1)
        .execution_options(synchronize_session=False)
    )


async def _locked_cursors(uow: UnitOfWork, keys: set[str]) -> dict[str, int]:
    if not keys:
        return {}
    rows = await uow.session.execute(
        select(Cursor.key, Cursor.position)
        .where(Cursor.key.in_(keys))
        .order_by(Cursor.key)
        .with_for_update()
    )
    return {row.key: row.position for row in rows}


def _named_reps(target: Assign) -> list[str]:
    return [target.rep] if target.rep else list(target.reps or [])


def _all_full(found: Candidates) -> Candidates:
    # Every candidate lost its last slot earlier in the same batch.
    extra = tuple(f"{rep_id} (no slot left)" for rep_id in found.order)
    return Candidates((), found.skipped + extra, found.strategy)
