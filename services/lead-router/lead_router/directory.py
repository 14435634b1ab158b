"""Reps and teams: who can take leads, where, how many, and how to reach them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from lead_router.models import Rep, Team
from lead_router.schemas import RepIn, TeamIn
from salesrail.http.problems import ProblemError, invalid_field, invalid_fields
from salesrail.notify import ChannelConfig, ChannelKeyMissing, Sealer, seal_channel
from salesrail.unit_of_work import UnitOfWork


def sealed_channels(channels: list[ChannelConfig], sealer: Sealer | None) -> list[dict[str, Any]]:
    """The channels as stored: their URLs and secrets sealed. Without a key, a 422 naming
    every credential rather than storing one in clear."""
    refused: list[str] = []
    stored = []
    for position, channel in enumerate(channels):
        try:
            stored.append(seal_channel(channel, sealer))
        except ChannelKeyMissing as exc:
            refused += [f"channels[{position}].{field}" for field in exc.fields]
    if refused:
        message = (
            "cannot be stored: no channel key is configured (SALESRAIL_CHANNEL_KEYS), and "
            "credentials are never stored in clear"
        )
        raise invalid_fields(refused, message, code="no_channel_key")
    return stored


async def put_team(
    uow: UnitOfWork, team_id: str, team_in: TeamIn, *, sealer: Sealer | None
) -> tuple[Team, bool]:
    """Create or replace a team; True when it is new."""
    channels = sealed_channels(team_in.channels, sealer)
    team = await uow.session.get(Team, team_id)
    created = team is None
    if team is None:
        team = Team(id=team_id, created_at=uow.now())
        uow.session.add(team)
    team.name, team.supervisor_id = team_in.name, team_in.supervisor_id
    team.channels = channels
    team.roles = sorted(set(team_in.roles))
    team.updated_at = uow.now()
    return team, created


async def put_rep(
    uow: UnitOfWork, rep_id: str, rep_in: RepIn, *, sealer: Sealer | None
) -> tuple[Rep, bool]:
    """Create or replace a rep; their open-lead count is the system's, never the caller's."""
    channels = sealed_channels(rep_in.channels, sealer)
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
    rep.channels = channels
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
