"""first_touch_48h on a real bus and a real database (both backends)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from salesrail.auth.principal import Role
from salesrail.events.catalog import ActivityLogged, LeadRouted
from tests.service.sla_monitor.conftest import (
    NOW,
    clocks_of,
    event,
    lead_received,
    move_to,
    signals,
)
from tests.support.apps import api_key, running
from tests.support.publishing import eventually, publish, wait_until_consumed

pytestmark = pytest.mark.usefixtures("nats_url")


def iso(moment) -> str:  # type: ignore[no-untyped-def]
    return moment.isoformat().replace("+00:00", "Z")


async def test_first_touch_fires_48_hours_after_the_lead_arrived_and_not_a_second_before(
    app, clock, nats_url
):  # type: ignore[no-untyped-def]
    lead_id = f"lead-{uuid.uuid4()}"
    received_at = NOW - timedelta(hours=10)
    due = received_at + timedelta(hours=48)
    async with running(app) as client:
        headers = await api_key(app, Role.SUPERVISOR)
        await publish(
            nats_url,
            event(lead_received(lead_id, received_at), at=NOW),
            event(LeadRouted(lead_id=lead_id, owner_id="rep-zhang", rule="r1"), at=NOW),
        )
        clocks = await eventually(
            lambda: clocks_of(client, lead_id, headers),
            until=lambda cs: any(c["policy"] == "first_touch_48h" for c in cs),
        )
        first_touch = next(c for c in clocks if c["policy"] == "first_touch_48h")
        assert first_touch["started_at"] == iso(received_at)
        assert first_touch["due_at"] == iso(due)
        assert first_touch["remaining_seconds"] == 38 * 3600
        assert first_touch["state"] == "running"

        await move_to(app, clock, due - timedelta(seconds=1))
        early = await signals(
            nats_url, "salesrail.sla.alert.first_touch_48h", entity_id=lead_id, timeout_s=1.5
        )
        assert early == []

        await move_to(app, clock, due)
        [alert] = await signals(nats_url, "salesrail.sla.alert.first_touch_48h", entity_id=lead_id)
        [notify] = await signals(nats_url, "salesrail.notify.requested", entity_id=lead_id)
    data = alert["data"]
    assert alert["type"] == "sla.alert.first_touch_48h"
    assert data["rule"] == "first_touch_48h"
    assert data["lead_id"] == lead_id
    assert data["owner_id"] == "rep-zhang"
    assert data["due_at"] == iso(due)
    assert data["fired_at"] == iso(due)
    assert data["severity"] == "high"
    assert data["notify"] == ["rep:rep-zhang", "supervisor_of:rep-zhang"]
    assert notify["data"]["recipients"] == [
        {"kind": "rep", "id": "rep-zhang"},
        {"kind": "supervisor_of", "id": "rep-zhang"},
    ]


async def test_the_owners_first_activity_in_time_stops_the_clock(app, clock, nats_url):  # type: ignore[no-untyped-def]
    lead_id = f"lead-{uuid.uuid4()}"
    async with running(app) as client:
        headers = await api_key(app, Role.OPS)
        await publish(
            nats_url,
            event(lead_received(lead_id, NOW), at=NOW),
            event(LeadRouted(lead_id=lead_id, owner_id="rep-li", rule="r1"), at=NOW),
        )
        assert await wait_until_consumed(nats_url, "SALESRAIL_LEAD", "sla-monitor-leads")
        await publish(
            nats_url,
            # Someone else's activity does not count as the owner's first touch.
            event(_activity(lead_id, "rep-other", NOW + timedelta(hours=1)), at=NOW),
            event(_activity(lead_id, "rep-li", NOW + timedelta(hours=2)), at=NOW),
        )
        assert await wait_until_consumed(nats_url, "SALESRAIL_ACTIVITY", "sla-monitor-activity")
        clocks = await eventually(
            lambda: clocks_of(client, lead_id, headers),
            until=lambda cs: any(
                c["policy"] == "first_touch_48h" and c["state"] == "stopped" for c in cs
            ),
        )
        first_touch = next(c for c in clocks if c["policy"] == "first_touch_48h")
        assert first_touch["stopped_at"] == iso(NOW + timedelta(hours=2))
        await move_to(app, clock, NOW + timedelta(hours=49))
        late = await signals(
            nats_url, "salesrail.sla.alert.first_touch_48h", entity_id=lead_id, timeout_s=1.5
        )
    assert late == []


async def test_a_lead_announced_twice_keeps_the_one_clock_of_its_first_announcement(app, nats_url):  # type: ignore[no-untyped-def]
    lead_id = f"lead-{uuid.uuid4()}"
    first_received_at = NOW - timedelta(hours=3)
    async with running(app) as client:
        headers = await api_key(app, Role.OPS)
        await publish(nats_url, event(lead_received(lead_id, first_received_at), at=NOW))
        # The same lead again under another event id, as a replayed import would send it.
        await publish(nats_url, event(lead_received(lead_id, NOW - timedelta(hours=1)), at=NOW))
        assert await wait_until_consumed(nats_url, "SALESRAIL_LEAD", "sla-monitor-leads")
        clocks = await clocks_of(client, lead_id, headers)
    assert len(clocks) == 1
    assert clocks[0]["started_at"] == iso(first_received_at)


async def test_an_unknown_lead_has_no_clocks(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        answer = await client.get("/v1/clocks", params={"lead_id": "no-such-lead"}, headers=headers)
    assert answer.status_code == 200
    assert answer.json() == {"clocks": []}


async def test_a_rep_sees_the_clocks_of_their_own_leads_only(app, nats_url):  # type: ignore[no-untyped-def]
    lead_id = f"lead-{uuid.uuid4()}"
    async with running(app) as client:
        await publish(
            nats_url,
            event(lead_received(lead_id, NOW), at=NOW),
            event(LeadRouted(lead_id=lead_id, owner_id="rep-zhang", rule="r1"), at=NOW),
        )
        assert await wait_until_consumed(nats_url, "SALESRAIL_LEAD", "sla-monitor-leads")
        owner = await api_key(app, Role.REP, rep_id="rep-zhang")
        other = await api_key(app, Role.REP, rep_id="rep-wang")
        mine = await client.get("/v1/clocks", params={"lead_id": lead_id}, headers=owner)
        theirs = await client.get("/v1/clocks", params={"lead_id": lead_id}, headers=other)
        anonymous = await client.get("/v1/clocks", params={"lead_id": lead_id})
    assert mine.status_code == 200 and mine.json()["clocks"]
    assert theirs.status_code == 403
    assert theirs.headers["content-type"] == "application/problem+json"
    assert anonymous.status_code == 401


async def test_asking_for_clocks_without_a_lead_id_is_a_problem_naming_it(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        headers = await api_key(app, Role.SUPERVISOR)
        missing = await client.get("/v1/clocks", headers=headers)
        empty = await client.get("/v1/clocks", params={"lead_id": ""}, headers=headers)
    assert missing.status_code == 422
    assert missing.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in missing.json()["errors"]] == ["lead_id"]
    assert [e["field"] for e in empty.json()["errors"]] == ["lead_id"]


async def test_the_service_is_ready_with_its_database_bus_consumers_and_scheduler(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": "ok",
        "auth_database": "ok",
        "nats": "ok",
        "consumers": "ok",
        "scheduler": "ok",
    }


def _activity(lead_id: str, rep_id: str, at) -> ActivityLogged:  # type: ignore[no-untyped-def]
    return ActivityLogged(
        activity_id=f"act-{uuid.uuid4()}",
        lead_id=lead_id,
        rep_id=rep_id,
        type="call",
        occurred_at=at,
    )
