"""Pure decisions of activity (no I/O): the funnel, who may do what, how a stage may move."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from salesrail.auth import Principal, Role

# The funnel, in order: one vocabulary for every role (contract.md, "Activity").
Stage = Literal["contact", "needs_confirmed", "demo", "negotiation", "won", "lost"]
STAGES: tuple[Stage, ...] = get_args(Stage)

# Every lead enters the funnel at its first stage.
INITIAL_STAGE: Stage = "contact"

# `won` ends the funnel; `lost` leaves it from anywhere. Both close the lead.
FUNNEL: tuple[Stage, ...] = ("contact", "needs_confirmed", "demo", "negotiation", "won")
CLOSED: frozenset[str] = frozenset({"won", "lost"})

# A sender's clock may run a little ahead of ours; more than this is a mistake.
FUTURE_TOLERANCE = timedelta(minutes=5)


def may_see(caller: Principal, owner_id: str | None) -> bool:
    """Least privilege: a rep sees only the leads they own; the other reading roles see all."""
    if caller.role is Role.REP:
        return owner_id is not None and owner_id == caller.rep_id
    return True


def may_act(caller: Principal, owner_id: str | None, team_id: str | None) -> bool:
    """Log on a lead or move its stage: its owner, the supervisor of the owner's team, admin."""
    if caller.role is Role.ADMIN:
        return True
    if caller.role is Role.REP:
        return owner_id is not None and owner_id == caller.rep_id
    if caller.role is Role.SUPERVISOR:
        return team_id is not None and team_id == caller.team_id
    return False


def may_override(caller: Principal, owner_id: str | None, team_id: str | None) -> bool:
    """Accept what the rules refused (with a reason): the team's supervisor or admin."""
    return caller.role in (Role.SUPERVISOR, Role.ADMIN) and may_act(caller, owner_id, team_id)


def sees_personal_data(caller: Principal, owner_id: str | None, team_id: str | None) -> bool:
    """Phone numbers and contact names in full: the people who may act on the lead."""
    return may_act(caller, owner_id, team_id)


def in_future(occurred_at: datetime, *, now: datetime) -> bool:
    return occurred_at - now > FUTURE_TOLERANCE


def on_time(occurred_at: datetime, logged_at: datetime, within: timedelta | None) -> bool | None:
    """Logged within the allowed delay after it happened; None where no delay applies."""
    if within is None:
        return None
    return logged_at - occurred_at <= within


# --- moving between stages ---------------------------------------------------------------


class SameStage(ValueError):
    pass


@dataclass(frozen=True)
class Move:
    """What a stage change must show: the gates to pass, in order, and whether a reason."""

    gates: tuple[Stage, ...]
    needs_reason: bool
    why_reason: str | None = None


def plan_move(current: str, target: Stage) -> Move:
    """Forward: the gate of every stage entered (a jump skips no deliverable). Back, or out of
    a closed lead: a reason. Into `lost`: its own gate only."""
    if current == target:
        raise SameStage(f"the lead is already at {target}")
    if current in CLOSED:
        gates: tuple[Stage, ...] = (target,) if target in CLOSED else ()
        return Move(gates, needs_reason=True, why_reason=f"reopening a lead at {current}")
    if target == "lost":
        return Move(("lost",), needs_reason=False)
    if FUNNEL.index(target) < FUNNEL.index(current):
        return Move((), needs_reason=True, why_reason=f"going back from {current} to {target}")
    return Move(FUNNEL[FUNNEL.index(current) + 1 : FUNNEL.index(target) + 1], needs_reason=False)


def next_stage(stage: str) -> Stage | None:
    """The stage a lead works towards; None once closed."""
    if stage in CLOSED or stage not in FUNNEL:
        return None
    return FUNNEL[FUNNEL.index(stage) + 1]
