"""Giving a lead an owner: the rule's candidates tried in order, caps held under concurrency.

A `RepBook` holds the reps and round-robin cursors a set of decisions needs, read once with
row locks (FOR UPDATE on PostgreSQL; SQLite serialises writers anyway), changed in memory and
written back once: a batch of intakes costs the same few statements as one.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class BookNeeds:
    """What deciding a set of matches reads: the reps they name or whose team they name, and
    the round-robin cursors they turn."""

    rep_ids: list[str]
    teams: list[str]
    cursors: list[str]

    @classmethod
    def of(cls, matches: Iterable[RouteMatch]) -> BookNeeds:
        wanted = [m for m in matches if not m.assign.pool]
        return cls(
            rep_ids=sorted({r for m in wanted for r in _named_reps(m.assign)}),
            teams=sorted({m.assign.team for m in wanted if m.assign.team}),
            cursors=sorted(
                {cursor_key(m) for m in wanted if m.assign.strategy is Strategy.ROUND_ROBIN}
            ),
        )

    def __bool__(self) -> bool:
        return bool(self.rep_ids or self.teams or self.cursors)

    def parameters(self) -> dict[str, list[str]]:
        """The parameters of `BOOK_ROWS` (PostgreSQL)."""
        return {"rep_ids": self.rep_ids, "teams": self.teams, "cursor_keys": self.cursors}


class RepBook:
    def __init__(self, reps: dict[str, RepState], cursors: dict[str, int]) -> None:
        self._reps = reps
        self._cursors = cursors
        self._changed: set[str] = set()
        self._turned: set[str] = set()

    @classmethod
    async def load(cls, uow: UnitOfWork, matches: Iterable[RouteMatch]) -> RepBook:
        """The reps and cursors for deciding `matches`, their rows locked until the transaction
        ends (a concurrent decision waits, then reads what this one wrote). The reps' channels
        come along, so telling the rep a decision picks reads nothing more."""
        needs = BookNeeds.of(matches)
        if needs and is_postgresql(uow.session):
            return cls.from_rows(uow, await driver.fetch(uow.session, _BOOK, needs.parameters()))
        reps: dict[str, RepState] = {}
        channels: dict[str, list[Any] | None] = {}
        if needs.rep_ids or needs.teams:
            r = _REPS.c  # Core columns: plain rows, without the ORM's work
            rows = await uow.session.execute(
                select(r.id, r.status, r.open_leads, r.cap, r.team_id, r.channels)
                .where(or_(r.id.in_(needs.rep_ids), r.team_id.in_(needs.teams)))
                .order_by(r.id)
                .with_for_update()
            )
            for row in rows:
                reps[row.id] = RepState(row.id, row.status, row.open_leads, row.cap, row.team_id)
                channels[row.id] = row.channels
        know_rep_channels(uow.session, channels)
        return cls(reps, await _lock_cursors(uow, needs.cursors))

    @classmethod
    def from_rows(cls, uow: UnitOfWork, rows: Iterable[Any]) -> RepBook:
        """The book from the rows of `BOOK_ROWS` (kind 'rep' or 'cursor'; others are skipped:
        a caller may read its own rows in the same statement)."""
        reps: dict[str, RepState] = {}
        cursors: dict[str, int] = {}
        channels: dict[str, list[Any] | None] = {}
        for row in rows:
            kind = row["kind"]
            if kind == "rep":
                rep_id = row["id"]
                reps[rep_id] = RepState(
                    rep_id, row["status"], row["open_leads"], row["cap"], row["team_id"]
                )
                channels[rep_id] = row["channels"]
            elif kind == "cursor":
                cursors[row["id"]] = row["position"]
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
        """Write the reps' new open-lead counts and the cursors' new positions."""
        if self._changed:
            counts = [{"id": i, "open_leads": n} for i, n in self.changed_counts()]
            await update_rows(uow.session, _REPS, "id", counts)
        if self._turned:
            positions = [{"key": k, "position": p} for k, p in self.changed_cursors()]
            await update_rows(uow.session, _CURSORS, "key", positions)
        self.saved()

    def changed_counts(self) -> list[tuple[str, int]]:
        """(rep id, open leads) of the reps whose count changed, for a caller that writes
        them itself (then `saved()`)."""
        return [(i, self._reps[i].open_leads) for i in sorted(self._changed)]

    def changed_cursors(self) -> list[tuple[str, int]]:
        """(cursor key, position) of the cursors that turned, likewise."""
        return [(k, self._cursors[k]) for k in sorted(self._turned)]

    def saved(self) -> None:
        self._changed.clear()
        self._turned.clear()

    def _pool(self, target: Assign) -> list[RepState]:
        if target.team:
            return [r for r in self._reps.values() if r.team_id == target.team]
        return [self._reps[r] for r in _named_reps(target) if r in self._reps]

    def _next_cursor(self, match: RouteMatch) -> int:
        key = cursor_key(match)
        position = self._cursors.get(key, 0)
        self._cursors[key] = position + 1
        self._turned.add(key)
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


async def _lock_cursors(uow: UnitOfWork, keys: list[str]) -> dict[str, int]:
    """Where each cursor stands (created at 0 first, whoever gets there first), its row
    locked until the transaction ends. (PostgreSQL: see `BOOK_ROWS`.)"""
    if not keys:
        return {}
    rows = await uow.session.execute(
        _lock_cursor_rows(len(keys)), {f"k{i}": k for i, k in enumerate(keys)}
    )
    return {row.key: row.position for row in rows}


@lru_cache(maxsize=16)
def _lock_cursor_rows(count: int) -> Executable:
    """INSERT `count` cursors at 0, or touch those stored (which locks them), RETURNING
    where they are."""
    table: Any = Cursor.__table__
    statement: Any = sqlite_insert(table).values(
        [{"key": bindparam(f"k{i}"), "position": 0} for i in range(count)]
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.key], set_={"position": table.c.position}
    ).returning(table.c.key, table.c.position)


_REPS: Any = Rep.__table__
_CURSORS: Any = Cursor.__table__
# The reps locked in id order, then the cursors (created at 0 first, whoever gets there first;
# touched, so locked) RETURNING where they stand: UNION ALL reads its branches in order, so the
# locks are taken in the same order as by the two statements on SQLite. A caller may put these
# CTEs before reads of its own and add its rows (see lead_router.intake).
BOOK_CTES = (
    "locked_reps AS ("
    " SELECT id, status, open_leads, cap, team_id, channels FROM reps"
    " WHERE id = ANY(CAST(:rep_ids AS text[])) OR team_id = ANY(CAST(:teams AS text[]))"
    " ORDER BY id FOR UPDATE"
    "), locked_cursors AS ("
    " INSERT INTO round_robin_cursors (key, position)"
    " SELECT unnest(CAST(:cursor_keys AS text[])), 0"
    " ON CONFLICT (key) DO UPDATE SET position = round_robin_cursors.position"
    " RETURNING key, position"
    ")"
)
BOOK_ROWS = (
    "SELECT 'rep' AS kind, id, status, open_leads, cap, team_id, channels,"
    " NULL::integer AS position FROM locked_reps "
    "UNION ALL "
    "SELECT 'cursor', key, NULL, NULL, NULL, NULL, NULL, position FROM locked_cursors"
)
_BOOK = text(f"WITH {BOOK_CTES} {BOOK_ROWS}")


def _named_reps(target: Assign) -> list[str]:
    return [target.rep] if target.rep else list(target.reps or [])


def _all_full(found: Candidates) -> Candidates:
    # Every candidate lost its last slot earlier in the same batch.
    extra = tuple(f"{rep_id} (no slot left)" for rep_id in found.order)
    return Candidates((), found.skipped + extra, found.strategy)
