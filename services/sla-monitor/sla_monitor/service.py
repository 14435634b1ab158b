"""Use cases of sla-monitor: events move clocks (in bulk), and clocks are read back.

A consumer batch is applied in one transaction with a fixed number of statements whatever
its size: lock the entities it touches, read their current clocks, run the pure rules in
memory, then one INSERT (a COPY on PostgreSQL) of the new clocks and one UPDATE of the changed
ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from salesrail.db.bulk import copy_columns, insert_columns, is_postgresql, one_of, update_rows
from salesrail.events.catalog import SlaAlertRetracted
from salesrail.events.envelope import Envelope
from salesrail.unit_of_work import UnitOfWork
from sla_monitor import rules
from sla_monitor.models import SlaClock, alerts, clocks, entities
from sla_monitor.policies import ENTITY_KEYS, Policy, PolicySet, Trigger, event_time
from sla_monitor.policybook import PolicyBook

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
EntityKey = tuple[str, str]

log = structlog.get_logger(__name__)

# A session's earliest new deadline, for the scheduler to wake up to after commit.
EARLIEST = "sla.earliest_fire_at"

_OWNER_EVENTS = {"lead.routed", "lead.claimed", "lead.reassigned", "lead.pooled"}
# A lead in one of these stages is no longer open (a rep who owns none has no daily clock).
CLOSED_STAGES = ("won", "lost")
_ENTITY_KEY = ("entity_type", "entity_id")
_CHUNK = 500  # rows per multi-row statement (SQLite allows 32 766 parameters)
CLOCK_FIELDS = [f.name for f in dataclasses.fields(rules.Clock) if f.name not in {"id", "dirty"}]
_MUTABLE = [
    "state",
    "is_current",
    "due_at",
    "warn_at",
    "next_step",
    "next_fire_at",
    "paused_at",
    "remaining_s",
    "stopped_at",
]


@dataclass(frozen=True)
class _Move:
    """One event's effect on one policy's clock of one entity."""

    policy: Policy
    policy_set: PolicySet
    action: str
    trigger: Trigger
    key: EntityKey
    at: datetime
    lead_id: str | None
    rep_id: str | None


@dataclass(frozen=True)
class _Ownership:
    key: EntityKey
    owner_id: str | None
    team_id: str | None
    at: datetime


@dataclass(frozen=True)
class _Stage:
    key: EntityKey
    stage: str
    at: datetime


async def apply_events(
    uow: UnitOfWork,
    book: PolicyBook,
    envelopes: Sequence[Envelope],
    *,
    on_locked: Callable[[], None] | None = None,
) -> None:
    """Move the clocks these events concern, in arrival order, each by its event time.
    `on_locked` is called once this transaction holds the locks of every entity it moves."""
    await book.refresh(uow)
    policy_set = book.current
    assert policy_set is not None
    moves: list[_Move] = []
    owners: list[_Ownership] = []
    stages: list[_Stage] = []
    for envelope in envelopes:
        owners += _ownership(envelope)
        stages += _stage(envelope)
        moves += _moves(policy_set, envelope)
    if not moves and not owners and not stages:
        return
    session = uow.session
    await prefer_index_lookups(session)
    keys = sorted({m.key for m in moves} | {o.key for o in owners} | {s.key for s in stages})
    known = await _lock_entities(session, keys)
    if on_locked is not None:
        on_locked()
    await _record_owners(session, known, owners)
    await _record_stages(session, known, stages)
    # After this batch's ownership and stage changes: who owns an open lead.
    open_owners = await open_lead_owners(
        session, {m.key[1] for m in moves if m.policy.applies_while == "owns_open_leads"}
    )
    current = await _current_clocks(session, keys)
    past = await _past_days(session, moves, current)
    loaded = [*current.values(), *past.values()]
    by_cycle = {_cycle_key(c): c for c in loaded}
    new: list[rules.Clock] = []
    retractions: list[rules.Retraction] = []
    for move in moves:
        if move.trigger.owner_only and not _by_owner(move, known.get(move.key)):
            continue
        slot = (move.policy.name, *move.key)
        applies = move.policy.applies_while is None or move.key[1] in open_owners
        earlier = None
        if move.policy.deadline is not None:
            earlier = by_cycle.get((*slot, _day_of(move)))
        outcome = _transition(current.get(slot), move, book, applies=applies, earlier=earlier)
        for clock in outcome.new:
            previous = current.get(slot)
            if previous is not None:
                previous.is_current = False
                previous.dirty = True
            current[slot] = clock
            by_cycle[_cycle_key(clock)] = clock
            new.append(clock)
        retractions += outcome.retractions
    await _write(session, uow.now(), new, [c for c in loaded if c.dirty])
    for retraction in retractions:
        await _retract(uow, retraction)
    upcoming = [c.next_fire_at for c in [*new, *loaded] if c.next_fire_at and c.dirty]
    if upcoming:
        earliest = min(upcoming)
        known_earliest = session.info.get(EARLIEST)
        session.info[EARLIEST] = min(earliest, known_earliest) if known_earliest else earliest


async def prefer_index_lookups(session: AsyncSession) -> None:
    """A batch looks up at most a few hundred ids: an index lookup each is always right, but
    on tables grown since their last ANALYZE PostgreSQL scans them whole instead (seconds per
    batch at 50 k rows). For this transaction only."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL enable_seqscan = off"))


def _moves(policy_set: PolicySet, envelope: Envelope) -> list[_Move]:
    data = envelope.data
    found = []
    for match in policy_set.matches(envelope.type, data):
        policy = policy_set.policies[match.policy]
        entity_id = data.get(match.trigger.entity_key or ENTITY_KEYS[policy.entity])
        if not isinstance(entity_id, str) or not entity_id:
            continue
        starts = match.action in ("start", "restart")
        at = event_time(
            data, envelope.occurred_at, start_at=policy.start_at if starts else "occurred_at"
        )
        # A ticket belongs to a lead; a rep's clock is about the rep, not the lead at hand.
        lead_id = {"lead": entity_id, "ticket": data.get("lead_id")}.get(policy.entity)
        found.append(
            _Move(
                policy=policy,
                policy_set=policy_set,
                action=match.action,
                trigger=match.trigger,
                key=(policy.entity, entity_id),
                at=at,
                lead_id=lead_id if isinstance(lead_id, str) else None,
                rep_id=data.get("rep_id"),
            )
        )
    return found


def _ownership(envelope: Envelope) -> list[_Ownership]:
    data = envelope.data
    if envelope.type in _OWNER_EVENTS and isinstance(data.get("lead_id"), str):
        owner = None if envelope.type == "lead.pooled" else data.get("owner_id")
        return [
            _Ownership(("lead", data["lead_id"]), owner, data.get("team_id"), envelope.occurred_at)
        ]
    if envelope.type.startswith("collab.ticket.") and isinstance(data.get("ticket_id"), str):
        if data.get("assignee_id"):
            return [
                _Ownership(
                    ("ticket", data["ticket_id"]), data["assignee_id"], None, envelope.occurred_at
                )
            ]
    return []


def _stage(envelope: Envelope) -> list[_Stage]:
    data = envelope.data
    if envelope.type == "lead.stage_changed" and isinstance(data.get("lead_id"), str):
        if isinstance(data.get("to"), str):
            at = event_time(data, envelope.occurred_at, start_at="occurred_at")
            return [_Stage(("lead", data["lead_id"]), data["to"], at)]
    return []


def _by_owner(move: _Move, entity: dict[str, Any] | None) -> bool:
    """An owner-only trigger: the event's rep is the owner, or no owner is known yet."""
    owner = entity.get("owner_id") if entity else None
    return owner is None or move.rep_id == owner


def _transition(
    current: rules.Clock | None,
    move: _Move,
    book: PolicyBook,
    *,
    applies: bool = True,
    earlier: rules.Clock | None = None,
) -> rules.Outcome:
    """The rules' answer to one move. A policy that `applies_while` its rep owns an open lead
    starts no clock without one, and an update then only ends the current clock."""
    if move.policy.deadline is not None:
        return _daily_transition(current, move, applies=applies, earlier=earlier)
    if not applies:
        if move.action == "start":
            return rules.Outcome()
        if move.action == "restart":
            move = dataclasses.replace(move, action="stop")
    if move.action in ("pause", "resume"):
        if current is None:
            return rules.Outcome()
        # The time left is counted with the version the clock started under.
        started_under = book.version(current.policy_version)
        step = rules.pause if move.action == "pause" else rules.resume
        return step(
            current,
            started_under.policies[current.policy],
            started_under.calendars[current.policy],
            at=move.at,
        )
    identity = dict(
        version=move.policy_set.version,
        entity_type=move.key[0],
        entity_id=move.key[1],
        lead_id=move.lead_id,
    )
    step = {"start": rules.start, "restart": rules.restart, "stop": rules.stop}[move.action]
    calendar = move.policy_set.calendars[move.policy.name]
    return step(current, move.policy, calendar, at=move.at, **identity)


def _daily_transition(
    current: rules.Clock | None, move: _Move, *, applies: bool, earlier: rules.Clock | None
) -> rules.Outcome:
    identity = dict(
        version=move.policy_set.version,
        entity_type=move.key[0],
        entity_id=move.key[1],
        lead_id=move.lead_id,
    )
    calendar = move.policy_set.calendars[move.policy.name]
    if move.action == "start":
        if not applies:
            return rules.Outcome()
        return rules.daily_start(current, move.policy, calendar, at=move.at, **identity)
    next_day = applies and move.action == "restart"
    return rules.daily_answer(
        current, move.policy, calendar, at=move.at, next_day=next_day, earlier=earlier, **identity
    )


def _day_of(move: _Move) -> int:
    """The cycle of the daily clock of the day `move` happened on."""
    calendar = move.policy_set.calendars[move.policy.name]
    return rules.day_cycle(calendar.local_date(move.at))


def _cycle_key(clock: rules.Clock) -> tuple[str, str, str, int]:
    return (clock.policy, clock.entity_type, clock.entity_id, clock.cycle)


async def _past_days(
    session: AsyncSession,
    moves: list[_Move],
    current: dict[tuple[str, str, str], rules.Clock],
) -> dict[tuple[str, str, str, int], rules.Clock]:
    """Clocks of days already over that late updates in this batch answer (rare: an update
    that arrived after its day's clock fired all its steps and the next day's began)."""
    wanted = set()
    for move in moves:
        if move.policy.deadline is None or move.action == "start":
            continue
        slot = (move.policy.name, *move.key)
        clock = current.get(slot)
        if clock is not None and clock.cycle > _day_of(move):
            wanted.add((*slot, _day_of(move)))
    found = {}
    for chunk in _chunks(sorted(wanted)):
        rows = await session.execute(
            select(clocks).where(
                tuple_(
                    clocks.c.entity_type, clocks.c.entity_id, clocks.c.policy, clocks.c.cycle
                ).in_([(t, i, p, c) for p, t, i, c in chunk])
            )
        )
        for row in rows.mappings():
            clock = clock_of(row)
            found[_cycle_key(clock)] = clock
    return found


async def open_lead_owners(session: AsyncSession, rep_ids: Iterable[str]) -> set[str]:
    """Which of these reps own at least one open lead (not won or lost, not in the pool), as
    far as the lead events received so far tell."""
    wanted = sorted(set(rep_ids))
    found: set[str] = set()
    postgresql = is_postgresql(session)
    for chunk in _chunks(wanted):
        rows = await session.execute(
            select(entities.c.owner_id)
            .where(
                one_of(entities.c.owner_id, chunk, postgresql=postgresql),
                entities.c.entity_type == "lead",
                or_(entities.c.stage.is_(None), entities.c.stage.not_in(CLOSED_STAGES)),
            )
            .distinct()
        )
        found.update(rows.scalars())
    return found


async def _record_stages(
    session: AsyncSession, known: dict[EntityKey, Any], stages: list[_Stage]
) -> None:
    changed = {}
    for change in stages:
        row = known[change.key]
        since = row.get("stage_since")
        if since is not None and change.at < since:
            continue  # an older stage change arriving late changes nothing
        row.update(stage=change.stage, stage_since=change.at)
        changed[change.key] = row
    await update_rows(
        session,
        entities,
        _ENTITY_KEY,
        [
            {"entity_type": t, "entity_id": i, "stage": r["stage"], "stage_since": r["stage_since"]}
            for (t, i), r in changed.items()
        ],
    )


async def _lock_entities(session: AsyncSession, keys: list[EntityKey]) -> dict[EntityKey, Any]:
    """Make sure each entity has its row, then lock the rows in key order (no deadlocks)."""
    postgresql = is_postgresql(session)
    types, ids = zip(*keys, strict=True) if keys else ((), ())
    await insert_columns(
        session, entities, {"entity_type": types, "entity_id": ids}, skip_existing=True
    )
    known: dict[EntityKey, Any] = {}
    for chunk in _chunks(keys):
        query = (
            select(entities)
            .where(of_entities(entities, chunk, postgresql=postgresql))
            .order_by(entities.c.entity_type, entities.c.entity_id)
        )
        if postgresql:
            query = query.with_for_update()
        result = await session.execute(query)
        names = list(result.keys())
        for row in result:  # zipped: dict(row mapping) costs a key view per row
            entity = dict(zip(names, row, strict=True))
            known[(entity["entity_type"], entity["entity_id"])] = entity
    return {key: known[key] for key in keys}


async def _record_owners(
    session: AsyncSession, known: dict[EntityKey, Any], owners: list[_Ownership]
) -> None:
    changed = {}
    for change in owners:
        row = known[change.key]
        since = row.get("owner_since")
        if since is not None and change.at < since:
            continue  # an older ownership event arriving late changes nothing
        row.update(owner_id=change.owner_id, team_id=change.team_id, owner_since=change.at)
        changed[change.key] = row
    await update_rows(
        session,
        entities,
        _ENTITY_KEY,
        [
            {
                "entity_type": t,
                "entity_id": i,
                "owner_id": r["owner_id"],
                "team_id": r["team_id"],
                "owner_since": r["owner_since"],
            }
            for (t, i), r in changed.items()
        ],
    )


async def _current_clocks(
    session: AsyncSession, keys: list[EntityKey]
) -> dict[tuple[str, str, str], rules.Clock]:
    found = {}
    wanted = set(keys)
    postgresql = is_postgresql(session)
    for chunk in _chunks(keys):
        rows = await session.execute(
            select(clocks).where(
                clocks.c.is_current,  # the partial index's own predicate
                of_entities(clocks, chunk, postgresql=postgresql),
            )
        )
        for row in rows.mappings():
            clock = clock_of(row)
            if clock.key in wanted:
                found[(clock.policy, clock.entity_type, clock.entity_id)] = clock
    return found


def of_entities(
    table: Table, keys: Iterable[EntityKey], *, postgresql: bool
) -> ColumnElement[bool]:
    """Rows whose entity id is one of these; callers keep those of the right type. By id
    alone, so PostgreSQL looks each id up in an index even before it has statistics on a
    new table (with the type in the condition it scanned every row of that type)."""
    ids = sorted({entity_id for _, entity_id in keys})
    return one_of(table.c.entity_id, ids, postgresql=postgresql)


def clock_of(row: Any) -> rules.Clock:
    return rules.Clock(id=row["id"], **{name: row[name] for name in CLOCK_FIELDS})


async def _write(
    session: AsyncSession, now: datetime, new: list[rules.Clock], changed: list[rules.Clock]
) -> None:
    for chunk in _chunks(new):
        columns = {name: [getattr(c, name) for c in chunk] for name in CLOCK_FIELDS}
        await copy_columns(session, clocks, {**columns, "created_at": [now] * len(chunk)})
    await update_rows(
        session,
        clocks,
        "id",
        [{"id": c.id, **{n: getattr(c, n) for n in _MUTABLE}} for c in changed],
    )


async def _retract(uow: UnitOfWork, retraction: rules.Retraction) -> None:
    """Alerts of this clock for instants after the answering event: take them back."""
    clock = retraction.clock
    of_clock = and_(
        alerts.c.policy == clock.policy,
        alerts.c.entity_type == clock.entity_type,
        alerts.c.entity_id == clock.entity_id,
        alerts.c.cycle == clock.cycle,
        alerts.c.point_at > retraction.after,
        alerts.c.state != "retracted",
    )
    rows = (await uow.session.execute(select(alerts).where(of_clock))).mappings().all()
    if not rows:
        return
    now = uow.now()
    await uow.session.execute(
        update(alerts)
        .where(alerts.c.id.in_([r["id"] for r in rows]))
        .values(state="retracted", retracted_at=now)
    )
    for row in rows:
        await uow.publish(
            SlaAlertRetracted(
                alert_id=row["id"],
                rule=row["policy"],
                kind=row["kind"],
                lead_id=row["lead_id"],
                ticket_id=row["ticket_id"],
                owner_id=row["owner_id"],
                entity_type=row["entity_type"],
                entity_id=row["entity_id"],
                cycle=row["cycle"],
                answered_at=retraction.after,
                retracted_at=now,
            )
        )
        log.info("alert.retracted", alert_id=row["id"], rule=row["policy"], kind=row["kind"])


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


async def list_clocks(*, unit_of_work: UnitOfWorkFactory, lead_id: str) -> list[SlaClock]:
    """Every clock of one lead (its own and its tickets'), every cycle, oldest first."""
    async with unit_of_work() as uow:
        rows = await uow.session.scalars(
            select(SlaClock)
            .where(SlaClock.lead_id == lead_id)
            .order_by(SlaClock.started_at, SlaClock.policy, SlaClock.cycle)
        )
        return list(rows)
