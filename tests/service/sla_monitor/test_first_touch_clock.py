"""sla-monitor's first clock on a real bus and a real database (both backends)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from salesrail.auth.principal import Role
from salesrail.clock import FrozenClock
from salesrail.events.catalog import LeadReceived
from sla_monitor.config import Settings
from sla_monitor.main import create_app
from tests.support.apps import api_key, running
from tests.support.publishing import envelope_for, eventually, publish, wait_until_consumed

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def app(database_url: str, auth_database_url: str, nats_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    return create_app(
        Settings(
            database_url=database_url,
            auth_database_url=auth_database_url,
            nats_url=nats_url,
            data_dir=tmp_path,
        ),
        clock=FrozenClock(NOW),
    )


def lead_received(lead_id: str, received_at: datetime) -> LeadReceived:
    return LeadReceived(
        lead_id=lead_id,
        source="website",
        company_name="杭州某某紧固件有限公司",
        city="杭州",
        category="紧固件",
        received_at=received_at,
    )


async def clocks_of(
    client: httpx.AsyncClient, lead_id: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    answer = await client.get("/v1/clocks", params={"lead_id": lead_id}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["clocks"]


async def test_a_received_lead_gets_a_48_hour_first_touch_clock_from_its_arrival(app, nats_url):  # type: ignore[no-untyped-def]
    lead_id = f"lead-{uuid.uuid4()}"
    received_at = NOW - timedelta(hours=10)
    async with running(app) as client:
        headers = await api_key(app, Role.SUPERVISOR)
        await publish(nats_url, envelope_for(lead_received(lead_id, received_at)))
        clocks = await eventually(lambda: clocks_of(client, lead_id, headers), until=bool)
    assert clocks == [
        {
            "policy": "first_touch_48h",
            "entity_type": "lead",
            "entity_id": lead_id,
            "cycle": 1,
            "started_at": received_at.isoformat().replace("+00:00", "Z"),
            "due_at": (received_at + timedelta(hours=48)).isoformat().replace("+00:00", "Z"),
            "state": "running",
            "remaining_seconds": 38 * 3600,
        }
    ]


async def test_a_lead_announced_twice_keeps_the_one_clock_of_its_first_announcement(app, nats_url):  # type: ignore[no-untyped-def]
    lead_id = f"lead-{uuid.uuid4()}"
    first_received_at = NOW - timedelta(hours=3)
    async with running(app) as client:
        headers = await api_key(app, Role.OPS)
        await publish(nats_url, envelope_for(lead_received(lead_id, first_received_at)))
        # The same lead again under another event id, as a replayed import would send it.
        await publish(nats_url, envelope_for(lead_received(lead_id, NOW - timedelta(hours=1))))
        # Both taken and acknowledged: the copy was handled, not left failing and retried.
        assert await wait_until_consumed(nats_url, "SALESRAIL_LEAD", "sla-monitor-leads")
        clocks = await clocks_of(client, lead_id, headers)
    assert len(clocks) == 1
    assert clocks[0]["started_at"] == first_received_at.isoformat().replace("+00:00", "Z")


async def test_an_unknown_lead_has_no_clocks(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        answer = await client.get("/v1/clocks", params={"lead_id": "no-such-lead"}, headers=headers)
    assert answer.status_code == 200
    assert answer.json() == {"clocks": []}


async def test_clocks_are_for_supervisors_ops_and_integrations_not_reps(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        rep = await api_key(app, Role.REP, rep_id="rep-zhang")
        as_rep = await client.get("/v1/clocks", params={"lead_id": "x"}, headers=rep)
        anonymous = await client.get("/v1/clocks", params={"lead_id": "x"})
    assert as_rep.status_code == 403
    assert as_rep.headers["content-type"] == "application/problem+json"
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


async def test_the_service_is_ready_with_its_database_bus_and_consumer(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": "ok",
        "auth_database": "ok",
        "nats": "ok",
        "consumers": "ok",
    }
