"""`salesrail token`: a JWT signed with the cluster's secret, for frontends in development."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from salesrail.auth.jwt_tokens import issue_token
from salesrail.auth.principal import Role
from salesrail.cli.context import jwt_secret
from salesrail.settings import ServiceSettings


def token(
    subject: Annotated[str, typer.Option(help="The person's id.")],
    role: Annotated[Role, typer.Option()],
    rep: Annotated[str | None, typer.Option(help="Rep id (defaults to the subject).")] = None,
    team: Annotated[str | None, typer.Option()] = None,
    hours: Annotated[float, typer.Option(help="Validity.")] = 8,
) -> None:
    settings = ServiceSettings()
    claims = {k: v for k, v in {"rep_id": rep, "team_id": team}.items() if v}
    print(
        issue_token(
            secret=jwt_secret(),
            subject=subject,
            role=role,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            expires_in_s=int(hours * 3600),
            now=time.time(),
            **claims,
        )
    )
