"""Reps and teams: who can take leads, where, how many, and how to reach them."""

from __future__ import annotations

from sqlalchemy import select

from lead_router.models import Rep, Team
from lead_router.schemas import RepIn, TeamIn
from salesrail.http.problems import ProblemError, invalid_field
from salesrail.unit_of_work import UnitOfWork


async def put_team(uow: UnitOfWork, team_id: str, team_in: TeamIn) -> tuple[Team, bool]:
    """Create or replace a team; True when it is new."""
    team = await uow.session.get(Team, team_id)
    created = team is None
    if team is None:
        team = Team(id=team_id, created_at=uow.now())
        uow.session.add(team)
    team.name, team.supervisor_id = team_in.name, team_in.supervisor_id
    team.channels = [channel.stored() for channel in team_in.channels]
    team.roles = sorted(set(team_in.roles))
    team.updated_at = uow.now()
    return team, created


async def put_rep(uow: UnitOfWork, rep_id: str, rep_in: RepIn) -> tuple[Rep, bool]:
    """Create or replace a rep; their open-lead count is the system's, never the caller's."""
    if rep_in.team_id is not None and await uow.session.get(Team, rep_in.team_id) is None:
        raise invalid_field("team_id", f"no team {rep_in.team_id}", code="unknown")
    rep = await uow.session.get(Rep, rep_id, with_for_update=True)
    created = rep is None
    if rep is None:
        rep = Rep(id=rep_id, open_leads=0, created_at=uow.now())
        uow.session.add(rep)
    for field, value in rep_in.model_dump(exclude={"channels", "roles"}).items():
        setattr(rep, field, value)
    rep.roles = sorted(set(rep_in.roles))
    rep.channels = [channel.stored() for channel in rep_in.channels]
    rep.updated_at = uow.now()
    return rep, created


async def list_reps(uow: UnitOfWork, *, team_id: str | None = None) -> list[Rep]:
    query = select(Rep).order_by(Rep.id)
    if team_id is not None:
        query = query.where(Rep.team_id == team_id)
    return list((await uow.session.scalars(query)).all())


async def list_teams(uow: UnitOfWork) -> list[Team]:
    return list((await uow.session.scalars(select(Team).order_by(Team.id))).all())


async def supervised_team_ids(uow: UnitOfWork, supervisor_id: str) -> set[str]:
    rows = await uow.session.scalars(select(Team.id).where(Team.supervisor_id == supervisor_id))
    return set(rows.all())


async def delete_rep(uow: UnitOfWork, rep_id: str) -> None:
    """Only a rep without open leads: hand their customers over first (or set them inactive)."""
    rep = await uow.session.get(Rep, rep_id, with_for_update=True)
    if rep is None:
        raise ProblemError(404, f"no rep {rep_id}")
    if rep.open_leads:
        raise ProblemError(
            409,
            f"rep {rep_id} still has {rep.open_leads} open leads: reassign them first, "
            "or set the rep inactive",
            type="urn:salesrail:problem:rep-has-leads",
        )
    await uow.session.delete(rep)


async def delete_team(uow: UnitOfWork, team_id: str) -> None:
    team = await uow.session.get(Team, team_id)
    if team is None:
        raise ProblemError(404, f"no team {team_id}")
    members = await uow.session.scalar(select(Rep.id).where(Rep.team_id == team_id).limit(1))
    if members is not None:
        raise ProblemError(
            409, f"team {team_id} still has reps", type="urn:salesrail:problem:team-not-empty"
        )
    await uow.session.delete(team)
