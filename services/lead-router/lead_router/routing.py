"""Giving a lead an owner: the rule's candidates tried in order, caps held under concurrency.

A `RepBook` holds the reps and round-robin cursors a set of decisions needs, read once with
row locks (FOR UPDATE on PostgreSQL; SQLite serialises writers anyway), changed in memory and
written back once: a batch of intakes costs the same few statements as one. The decisions are
known before they are taken, so each cursor moves by their number in one statement that also
creates it (and locks its row) and answers where the batch's turns start.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from sqlalchemy import Executable, bindparam, or_, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from lead_router.assignment import Candidates, RepState, candidates, describe_pick
from lead_router.models import Cursor, Rep
from lead_router.notifications import know_rep_channels
from lead_router.routing_rules import Assign, RouteMatch, Strategy
from salesrail.db import driver
from salesrail.db.bulk import is_postgresql, update_rows
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
        """The reps and cursors for deciding each of `matches` once, in their order (each
        round-robin decision takes the next turn of its cursor: the cursors are moved now).
        The reps' channels come along, so telling the rep a decision picks reads nothing more."""
        wanted = [m for m in matches if not m.assign.pool]
        rep_ids = {r for m in wanted for r in _named_reps(m.assign)}
        teams = {m.assign.team for m in wanted if m.assign.team}
        turns = Counter(cursor_key(m) for m in wanted if m.assign.strategy is Strategy.ROUND_ROBIN)
        if (rep_ids or teams or turns) and is_postgresql(uow.session):
            return await cls._load_at_once(uow, rep_ids, teams, turns)
        reps: dict[str, RepState] = {}
        channels: dict[str, list[Any] | None] = {}
        if rep_ids or teams:
            r = _REPS.c  # Core columns: plain rows, without the ORM's work
            rows = await uow.session.execute(
                select(r.id, r.status, r.open_leads, r.cap, r.team_id, r.channels)
                .where(or_(r.id.in_(rep_ids), r.team_id.in_(teams)))
                .order_by(r.id)
                .with_for_update()
            )
            for row in rows:
                reps[row.id] = RepState(row.id, row.status, row.open_leads, row.cap, row.team_id)
                channels[row.id] = row.channels
        know_rep_channels(uow.session, channels)
        return cls(reps, await _take_turns(uow, turns))

    @classmethod
    async def _load_at_once(
        cls, uow: UnitOfWork, rep_ids: set[str], teams: set[str], turns: Counter[str]
    ) -> RepBook:
        """`load` in one statement (PostgreSQL): a round trip costs more than the rows."""
        keys = sorted(turns)
        rows = await driver.fetch(
            uow.session,
            _LOAD_AT_ONCE,
            {
                "rep_ids": sorted(rep_ids),
                "teams": sorted(teams),
                "keys": keys,
                "steps": [turns[k] for k in keys],
            },
        )
        reps: dict[str, RepState] = {}
        cursors: dict[str, int] = {}
        channels: dict[str, list[Any] | None] = {}
        for row in rows:
            rep_id = row["id"]
            if row["kind"] == "rep":
                reps[rep_id] = RepState(
                    rep_id, row["status"], row["open_leads"], row["cap"], row["team_id"]
                )
                channels[rep_id] = row["channels"]
            else:
                cursors[rep_id] = row["position"] - turns[rep_id]
        know_rep_channels(uow.session, channels)
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
        """Write the reps' new open-lead counts (the cursors moved in `load`)."""
        if self._changed:
            rows = [
                {"id": i, "open_leads": self._reps[i].open_leads} for i in sorted(self._changed)
            ]
            await update_rows(uow.session, _REPS, "id", rows)
            self._changed.clear()

    def changed_counts(self) -> list[tuple[str, int]]:
        """(rep id, open leads) of the reps whose count changed, for a caller that writes
        them itself (then `saved()`)."""
        return [(i, self._reps[i].open_leads) for i in sorted(self._changed)]

    def saved(self) -> None:
        self._changed.clear()

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


async def _take_turns(uow: UnitOfWork, turns: Counter[str]) -> dict[str, int]:
    """Move each cursor on by its number of turns (creating it at 0 first, whoever gets there
    first); where each cursor stood before. The rows stay locked until the transaction ends,
    so a concurrent batch takes the turns after these. (PostgreSQL: see `_LOAD_AT_ONCE`.)"""
    if not turns:
        return {}
    keys = sorted(turns)
    rows = await uow.session.execute(
        _advance_cursors(len(keys)),
        {f"k{i}": k for i, k in enumerate(keys)} | {f"s{i}": turns[k] for i, k in enumerate(keys)},
    )
    return {row.key: row.position - turns[row.key] for row in rows}


@lru_cache(maxsize=16)
def _advance_cursors(count: int) -> Executable:
    """INSERT `count` cursors at their turns, or add the turns to those stored, RETURNING
    where they are now."""
    table: Any = Cursor.__table__
    statement: Any = sqlite_insert(table).values(
        [{"key": bindparam(f"k{i}"), "position": bindparam(f"s{i}")} for i in range(count)]
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={"position": table.c.position + statement.excluded.position},
    ).returning(table.c.key, table.c.position)


_REPS: Any = Rep.__table__
# The reps locked in id order, then the cursors moved on by their turns (created at 0 first,
# whoever gets there first) RETURNING where they are now: UNION ALL reads its branches in
# order, so the locks are taken in the same order as by the two statements on SQLite.
_LOAD_AT_ONCE = text(
    "WITH locked AS ("
    " SELECT id, status, open_leads, cap, team_id, channels FROM reps"
    " WHERE id = ANY(CAST(:rep_ids AS text[])) OR team_id = ANY(CAST(:teams AS text[]))"
    " ORDER BY id FOR UPDATE"
    "), moved AS ("
    " INSERT INTO round_robin_cursors (key, position)"
    " SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:steps AS integer[]))"
    " ON CONFLICT (key) DO UPDATE"
    " SET position = round_robin_cursors.position + excluded.position"
    " RETURNING key, position"
    ") "
    "SELECT 'rep' AS kind, id, status, open_leads, cap, team_id, channels,"
    " NULL::integer AS position FROM locked "
    "UNION ALL "
    "SELECT 'cursor', key, NULL, NULL, NULL, NULL, NULL, position FROM moved"
)


def _named_reps(target: Assign) -> list[str]:
    return [target.rep] if target.rep else list(target.reps or [])


def _all_full(found: Candidates) -> Candidates:
    # Every candidate lost its last slot earlier in the same batch.
    extra = tuple(f"{rep_id} (no slot left)" for rep_id in found.order)
    return Candidates((), found.skipped + extra, found.strategy)
