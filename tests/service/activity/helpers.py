"""What activity's service tests share: people, a lead activity has heard of, uploads."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from activity.config import Settings
from activity.main import create_app
from salesrail.auth.jwt_tokens import issue_token
from salesrail.auth.principal import Role
from salesrail.events.catalog import LeadReceived, LeadRouted
from tests.support.apps import service_app
from tests.support.publishing import envelope_for, eventually, publish

JWT_SECRET = "a-test-secret-that-is-long-enough-for-hs256"
COMPANY = "杭州某某紧固件有限公司"
TEAM = "east"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\x00" * 400
CHECKLIST = {
    "freight_included": True,
    "instalments_allowed": False,
    "technical_parameters_attached": True,
}


def make_app(
    database_url: str, auth_database_url: str, nats_url: str, data_dir: Path, **overrides: Any
) -> FastAPI:
    return service_app(
        create_app,
        Settings,
        database_url=database_url,
        auth_database_url=auth_database_url,
        nats_url=nats_url,
        data_dir=data_dir,
        jwt_secret=JWT_SECRET,
        **overrides,
    )


def person(subject: str, role: Role, **claims: Any) -> dict[str, str]:
    """A person's bearer token, as a frontend sends it."""
    token = issue_token(
        secret=JWT_SECRET,
        subject=subject,
        role=role,
        issuer="salesrail",
        audience="salesrail",
        now=time.time(),
        **claims,
    )
    return {"Authorization": f"Bearer {token}"}


def rep(rep_id: str = "rep-zhang") -> dict[str, str]:
    return person(rep_id, Role.REP, team_id=TEAM)


def supervisor(team: str = TEAM) -> dict[str, str]:
    return person(f"sup-{team}", Role.SUPERVISOR, team_id=team)


ADMIN = person("admin-1", Role.ADMIN)


async def lead_of(
    client: httpx.AsyncClient,
    nats_url: str,
    owner_id: str = "rep-zhang",
    *,
    team_id: str = TEAM,
    company_name: str = COMPANY,
) -> str:
    """A lead owned by `owner_id` of `team_id`, once activity has heard of it."""
    lead_id = str(uuid.uuid4())
    received = LeadReceived(
        lead_id=lead_id,
        source="website",
        company_name=company_name,
        city="杭州",
        category="紧固件",
        received_at=datetime.now(UTC),
    )
    routed = LeadRouted(lead_id=lead_id, owner_id=owner_id, rule="杭州 -> east", team_id=team_id)
    await publish(nats_url, envelope_for(received), envelope_for(routed))
    answer = await eventually(
        lambda: client.get(f"/v1/leads/{lead_id}/stage", headers=ADMIN),
        lambda r: r.status_code == 200 and r.json()["owner_id"] == owner_id,
    )
    assert answer.status_code == 200, answer.text
    return lead_id


async def upload(
    client: httpx.AsyncClient,
    lead_id: str,
    content: bytes,
    headers: dict[str, str],
    name: str = "file.bin",
) -> str:
    answer = await client.post(
        f"/v1/leads/{lead_id}/attachments", files={"file": (name, content)}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["attachment_id"])


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def activity(
    lead_id: str, type_: str, *, rep_id: str = "rep-zhang", **fields: Any
) -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "rep_id": rep_id,
        "type": type_,
        "occurred_at": fields.pop("occurred_at", ago(minutes=30)),
        **fields,
    }


def fields_of(problem: httpx.Response) -> list[str]:
    assert problem.headers["content-type"] == "application/problem+json", problem.text
    return [error["field"] for error in problem.json()["errors"]]
