"""Pure decisions of activity (no I/O)."""

from __future__ import annotations

from typing import Literal, get_args

from salesrail.auth import Principal, Role

# The funnel, in order: one vocabulary for every role (contract.md, "Activity").
Stage = Literal["contact", "needs_confirmed", "demo", "negotiation", "won", "lost"]
STAGES: tuple[Stage, ...] = get_args(Stage)

# Every lead enters the funnel at its first stage.
INITIAL_STAGE: Stage = "contact"


def may_see(caller: Principal, owner_id: str | None) -> bool:
    """Least privilege: a rep sees only the leads they own; the other reading roles see all."""
    if caller.role is Role.REP:
        return owner_id is not None and owner_id == caller.rep_id
    return True
