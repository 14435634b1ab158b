"""activity's view of leads whatever order lead events arrive in, and the owner's team
(both backends, a real bus)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from salesrail.events.catalog import LeadClaimed, LeadReassigned, LeadRouted
from tests.service.activity.helpers import ADMIN, activity, lead_of, supervisor
from tests.support.apps import running
from tests.support.publishing import envelope_for, eventually, publish, wait_until_consumed


async def test_an_older_owner_change_arriving_late_does_not_replace_a_newer_one(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url, owner_id="rep-zhang")
        now = datetime.now(UTC)
        newer = envelope_for(
            LeadReassigned(
                lead_id=lead_id, owner_id="rep-li", reason="rep-zhang left", by="sup-east"
            )
        ).model_copy(update={"occurred_at": now + timedelta(seconds=5)})
        older = envelope_for(
            LeadRouted(lead_id=lead_id, owner_id="rep-zhao", rule="late retry", team_id="east")
        ).model_copy(update={"occurred_at": now + timedelta(seconds=1)})
        await publish(nats_url, newer, older)
        assert await wait_until_consumed(nats_url, "SALESRAIL_LEAD", "activity-leads")
        stage = await client.get(f"/v1/leads/{lead_id}/stage", headers=ADMIN)
    assert stage.json()["owner_id"] == "rep-li"


async def test_a_claimed_lead_belongs_to_the_team_routing_gave_its_new_owner(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        # Routing told us rep-li is in the west team ...
        await lead_of(client, nats_url, owner_id="rep-li", team_id="west")
        # ... so the east lead rep-li claims becomes the west supervisor's to act on.
        lead_id = await lead_of(client, nats_url, owner_id="rep-zhang", team_id="east")
        await publish(nats_url, envelope_for(LeadClaimed(lead_id=lead_id, owner_id="rep-li")))
        await eventually(
            lambda: client.get(f"/v1/leads/{lead_id}/stage", headers=ADMIN),
            lambda r: r.json()["owner_id"] == "rep-li",
        )
        call = activity(lead_id, "call", rep_id="rep-li", summary="回访")
        west = await client.post("/v1/activities", json=call, headers=supervisor("west"))
        east = await client.post("/v1/activities", json=call, headers=supervisor("east"))
    assert west.status_code == 201, west.text
    assert east.status_code == 404


async def test_a_claim_that_names_the_team_gives_the_lead_to_that_teams_supervisor(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url, owner_id="rep-zhang", team_id="east")
        claimed = LeadClaimed(lead_id=lead_id, owner_id="rep-wu", team_id="north")
        await publish(nats_url, envelope_for(claimed))
        await eventually(
            lambda: client.get(f"/v1/leads/{lead_id}/stage", headers=ADMIN),
            lambda r: r.json()["owner_id"] == "rep-wu",
        )
        call = activity(lead_id, "call", rep_id="rep-wu", summary="回访")
        north = await client.post("/v1/activities", json=call, headers=supervisor("north"))
        east = await client.post("/v1/activities", json=call, headers=supervisor("east"))
    assert north.status_code == 201, north.text
    assert east.status_code == 404


async def test_an_owner_whose_team_nobody_told_leaves_the_lead_to_admin_and_owner(
    app: FastAPI, nats_url: str
) -> None:
    lead_id = str(uuid.uuid4())
    async with running(app) as client:
        await publish(nats_url, envelope_for(LeadClaimed(lead_id=lead_id, owner_id="rep-new")))
        await eventually(
            lambda: client.get(f"/v1/leads/{lead_id}/stage", headers=ADMIN),
            lambda r: r.status_code == 200,
        )
        call = activity(lead_id, "call", rep_id="rep-new")
        by_supervisor = await client.post("/v1/activities", json=call, headers=supervisor())
        by_admin = await client.post("/v1/activities", json=call, headers=ADMIN)
    assert by_supervisor.status_code == 404
    assert by_admin.status_code == 201, by_admin.text
