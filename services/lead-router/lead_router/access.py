"""Who may see a lead, and who sees its phone number in full. Pure."""

from __future__ import annotations

from collections.abc import Collection

from lead_router.models import Lead
from salesrail.auth import Principal, Role

EVERYTHING = {Role.ADMIN, Role.OPS}


def may_see(caller: Principal, lead: Lead, *, supervised_teams: Collection[str]) -> bool:
    """A rep their own leads; a supervisor their teams'; admin and ops all; a marketing
    system the leads it sent."""
    if caller.role in EVERYTHING:
        return True
    if caller.role is Role.REP:
        return lead.owner_id is not None and lead.owner_id == caller.rep_id
    if caller.role is Role.SUPERVISOR:
        return lead.team_id is not None and lead.team_id in _teams(caller, supervised_teams)
    if caller.role is Role.INTEGRATION:
        return lead.created_by == caller.subject
    return False


def sees_full_phone(caller: Principal, lead: Lead, *, supervised_teams: Collection[str]) -> bool:
    """The owner, the owner's supervisor and admin; everyone else gets 138****5678."""
    if caller.role is Role.ADMIN:
        return True
    if caller.role is Role.REP:
        return lead.owner_id is not None and lead.owner_id == caller.rep_id
    if caller.role is Role.SUPERVISOR:
        return lead.team_id is not None and lead.team_id in _teams(caller, supervised_teams)
    return False


def _teams(caller: Principal, supervised_teams: Collection[str]) -> set[str]:
    return set(supervised_teams) | ({caller.team_id} if caller.team_id else set())
