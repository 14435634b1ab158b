"""activity's view of leads, kept from lead events on a real bus and database (both backends)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from activity.config import Settings
from activity.main import create_app
from activity.models import Lead
from salesrail.auth.principal import Role
from salesrail.events.catalog import (
    LeadClaimed,
    LeadPooled,
    LeadReassigned,
    LeadReceived,
    LeadRouted,
)
from tests.support.apps import api_key, running, runtime, service_app
from tests.support.publishing import envelope_for, eventually, publish, wait_until_consumed


@pytest.fixture
def nats_url(fresh_nats_url: str) -> str:
    """A server of each test alone: "everything consumed" then means this test's events."""
    return fresh_nats_url


@pytest.fixture
def app(database_url: str, auth_database_url: str, nats_url: str, tmp_path: Path) -> FastAPI:
    return service_app(
        create_app,
        Settings,
        database_url=database_url,
        auth_database_url=auth_database_url,
        nats_url=nats_url,
        data_dir=tmp_path,
    )


def received(lead_id: str, company_name: str = "杭州某某紧固件有限公司") -> LeadReceived:
    return LeadReceived(
        lead_id=lead_id,
        source="website",
        company_name=company_name,
        city="杭州",
        category="紧固件",
        received_at=datetime.now(UTC),
    )


def routed(lead_id: str, owner_id: str) -> LeadRouted:
    return LeadRouted(lead_id=lead_id, owner_id=owner_id, rule="杭州 紧固件 -> east team")


async def stage_until(
    client: httpx.AsyncClient, lead_id: str, headers: dict[str, str], *, owner_id: str | None
) -> httpx.Response:
    """Poll the stage until the lead shows `owner_id` (events apply asynchronously)."""
    return await eventually(
        lambda: client.get(f"/v1/leads/{lead_id}/stage", headers=headers),
        lambda r: r.status_code == 200 and r.json()["owner_id"] == owner_id,
    )


async def test_a_received_then_routed_lead_shows_its_owner_at_the_first_stage(
    app: FastAPI, nats_url: str
) -> None:
    lead_id = str(uuid.uuid4())
    async with running(app) as client:
        supervisor = await api_key(app, Role.SUPERVISOR)
        await publish(nats_url, envelope_for(received(lead_id)))
        await publish(nats_url, envelope_for(routed(lead_id, "rep-zhang")))

        answer = await stage_until(client, lead_id, supervisor, owner_id="rep-zhang")

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "lead_id": lead_id,
        "stage": "contact",
        "owner_id": "rep-zhang",
        "company_name": "杭州某某紧固件有限公司",
    }


async def test_a_lead_announced_again_stays_one_lead_and_keeps_its_owner(
    app: FastAPI, nats_url: str
) -> None:
    lead_id = str(uuid.uuid4())
    first = envelope_for(received(lead_id))
    async with running(app) as client:
        supervisor = await api_key(app, Role.SUPERVISOR)
        await publish(nats_url, first, envelope_for(routed(lead_id, "rep-zhang")))
        await stage_until(client, lead_id, supervisor, owner_id="rep-zhang")

        # The same event re-sent after JetStream's duplicate window, then the same lead
        # announced under a new event id (with a changed name).
        await publish(nats_url, first, msg_id=f"{first.id}-resent")
        await publish(nats_url, envelope_for(received(lead_id, "另一个名字")))
        assert await wait_until_consumed(nats_url, "SALESRAIL_LEAD", "activity-leads")

        answer = await client.get(f"/v1/leads/{lead_id}/stage", headers=supervisor)
        async with runtime(app).unit_of_work() as uow:
            rows = await uow.session.scalar(
                select(func.count()).select_from(Lead).where(Lead.lead_id == lead_id)
            )

    assert rows == 1
    assert answer.json()["owner_id"] == "rep-zhang"
    assert answer.json()["company_name"] == "杭州某某紧固件有限公司"


async def test_owner_changes_follow_the_lead_through_reassignment_pool_and_claim(
    app: FastAPI, nats_url: str
) -> None:
    lead_id = str(uuid.uuid4())
    async with running(app) as client:
        supervisor = await api_key(app, Role.SUPERVISOR)
        await publish(nats_url, envelope_for(received(lead_id)))
        await publish(nats_url, envelope_for(routed(lead_id, "rep-zhang")))
        await publish(
            nats_url,
            envelope_for(
                LeadReassigned(
                    lead_id=lead_id,
                    owner_id="rep-li",
                    previous_owner_id="rep-zhang",
                    reason="rep-zhang left",
                    by="supervisor-wang",
                )
            ),
        )
        reassigned = await stage_until(client, lead_id, supervisor, owner_id="rep-li")

        await publish(nats_url, envelope_for(LeadPooled(lead_id=lead_id, reason="untouched 72h")))
        pooled = await stage_until(client, lead_id, supervisor, owner_id=None)

        await publish(nats_url, envelope_for(LeadClaimed(lead_id=lead_id, owner_id="rep-zhao")))
        claimed = await stage_until(client, lead_id, supervisor, owner_id="rep-zhao")

    assert reassigned.json()["owner_id"] == "rep-li"
    assert pooled.status_code == 200
    assert pooled.json()["owner_id"] is None
    assert claimed.json()["owner_id"] == "rep-zhao"


async def test_an_owner_change_before_the_leads_announcement_is_kept_until_it_arrives(
    app: FastAPI, nats_url: str
) -> None:
    lead_id = str(uuid.uuid4())
    async with running(app) as client:
        supervisor = await api_key(app, Role.SUPERVISOR)
        await publish(nats_url, envelope_for(routed(lead_id, "rep-zhang")))
        early = await stage_until(client, lead_id, supervisor, owner_id="rep-zhang")

        await publish(nats_url, envelope_for(received(lead_id)))
        complete = await eventually(
            lambda: client.get(f"/v1/leads/{lead_id}/stage", headers=supervisor),
            lambda r: r.json().get("company_name") is not None,
        )

    assert early.json() == {
        "lead_id": lead_id,
        "stage": "contact",
        "owner_id": "rep-zhang",
        "company_name": None,
    }
    assert complete.json()["company_name"] == "杭州某某紧固件有限公司"
    assert complete.json()["owner_id"] == "rep-zhang"


async def test_a_rep_sees_the_stage_of_their_own_leads_only(app: FastAPI, nats_url: str) -> None:
    own, other = str(uuid.uuid4()), str(uuid.uuid4())
    async with running(app) as client:
        supervisor = await api_key(app, Role.SUPERVISOR)
        rep = await api_key(app, Role.REP, rep_id="rep-zhang")
        await publish(nats_url, envelope_for(received(own)), envelope_for(received(other)))
        await publish(
            nats_url,
            envelope_for(routed(own, "rep-zhang")),
            envelope_for(routed(other, "rep-li")),
        )
        await stage_until(client, other, supervisor, owner_id="rep-li")
        await stage_until(client, own, supervisor, owner_id="rep-zhang")

        mine = await client.get(f"/v1/leads/{own}/stage", headers=rep)
        theirs = await client.get(f"/v1/leads/{other}/stage", headers=rep)
        unknown = await client.get(f"/v1/leads/{uuid.uuid4()}/stage", headers=rep)

    assert mine.status_code == 200
    assert mine.json()["owner_id"] == "rep-zhang"
    assert theirs.status_code == 404
    assert theirs.headers["content-type"] == "application/problem+json"
    # Someone else's lead and no lead at all look the same: nothing leaks.
    assert theirs.json()["detail"] == f"no lead {other}"
    assert unknown.status_code == 404


async def test_reading_a_stage_needs_a_key_of_a_reading_role(app: FastAPI) -> None:
    async with running(app) as client:
        path = f"/v1/leads/{uuid.uuid4()}/stage"
        missing = await client.get(path)
        integration = await client.get(path, headers=await api_key(app, Role.INTEGRATION))
        ready = await client.get("/readyz")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert integration.status_code == 403
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["consumers"] == "ok"
    assert set(checks.values()) == {"ok"}


async def test_the_asyncapi_document_lists_the_lead_events_activity_follows(app: FastAPI) -> None:
    async with running(app) as client:
        document = (await client.get("/asyncapi.json")).json()
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {
        "salesrail.lead.received",
        "salesrail.lead.routed",
        "salesrail.lead.claimed",
        "salesrail.lead.reassigned",
        "salesrail.lead.pooled",
    } <= addresses
