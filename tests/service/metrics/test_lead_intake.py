"""metrics counts leads per business day (Asia/Shanghai) from the bus (both backends)."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from metrics.config import Settings
from metrics.main import create_app
from salesrail.auth.principal import Role
from salesrail.events.catalog import LeadReceived
from salesrail.events.envelope import Envelope
from tests.support.apps import api_key, running, service_app
from tests.support.publishing import envelope_for, eventually, publish, wait_until_consumed


@pytest.fixture
def nats_url(fresh_nats_url: str) -> str:
    """A server of each test alone: a durable consumer reads the stream from its start, so
    leads announced by other tests would be counted too."""
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


def lead_received(received_at: str, source: str = "website") -> Envelope:
    return envelope_for(
        LeadReceived(
            lead_id=str(uuid.uuid4()),
            source=source,
            company_name="宁波某某机械有限公司",
            city="宁波",
            category="机械",
            received_at=datetime.fromisoformat(received_at),
        )
    )


async def intake_until(
    client: httpx.AsyncClient, headers: dict[str, str], *, start: str, end: str, total: int
) -> dict[str, Any]:
    """Poll the KPI until it has counted `total` leads (events apply asynchronously)."""
    answer = await eventually(
        lambda: client.get(
            "/v1/kpis/lead-intake", params={"from": start, "to": end}, headers=headers
        ),
        lambda r: r.status_code == 200 and r.json()["total"] >= total,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_leads_are_counted_on_their_shanghai_day_per_source(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        supervisor = await api_key(app, Role.SUPERVISOR)
        await publish(
            nats_url,
            lead_received("2026-03-09T09:30:00+08:00"),
            lead_received("2026-03-09T23:10:00+08:00"),
            # 00:05 in Shanghai is still 2026-03-09 in UTC; the sales day is the 10th.
            lead_received("2026-03-09T16:05:00+00:00"),
            lead_received("2026-03-09T14:00:00+08:00", source="douyin"),
        )
        both_days = await intake_until(
            client, supervisor, start="2026-03-09", end="2026-03-10", total=4
        )
        second_day = await intake_until(
            client, supervisor, start="2026-03-10", end="2026-03-10", total=1
        )

    assert both_days == {
        "from": "2026-03-09",
        "to": "2026-03-10",
        "total": 4,
        "days": [
            {"day": "2026-03-09", "source": "douyin", "count": 1},
            {"day": "2026-03-09", "source": "website", "count": 2},
            {"day": "2026-03-10", "source": "website", "count": 1},
        ],
    }
    assert second_day["days"] == [{"day": "2026-03-10", "source": "website", "count": 1}]


async def test_a_lead_event_delivered_twice_is_counted_once(app: FastAPI, nats_url: str) -> None:
    first = lead_received("2026-04-01T10:00:00+08:00")
    async with running(app) as client:
        supervisor = await api_key(app, Role.OPS)
        await publish(nats_url, first)
        # The same event again, past JetStream's duplicate window, then a different lead.
        await publish(nats_url, first, msg_id=f"{first.id}-resent")
        await publish(nats_url, lead_received("2026-04-01T11:00:00+08:00"))
        await intake_until(client, supervisor, start="2026-04-01", end="2026-04-01", total=2)
        assert await wait_until_consumed(nats_url, "SALESRAIL_LEAD", "metrics-leads")

        answer = await client.get(
            "/v1/kpis/lead-intake",
            params={"from": "2026-04-01", "to": "2026-04-01"},
            headers=supervisor,
        )

    assert answer.json()["total"] == 2
    assert answer.json()["days"] == [{"day": "2026-04-01", "source": "website", "count": 2}]


async def test_a_period_without_leads_counts_zero(app: FastAPI) -> None:
    async with running(app) as client:
        answer = await client.get(
            "/v1/kpis/lead-intake",
            params={"from": "2025-01-01", "to": "2025-12-31"},
            headers=await api_key(app, Role.ADMIN),
        )
    assert answer.status_code == 200
    assert answer.json() == {"from": "2025-01-01", "to": "2025-12-31", "total": 0, "days": []}


async def test_lead_intake_is_for_supervisors_ops_and_admins_not_reps(app: FastAPI) -> None:
    params = {"from": "2026-03-01", "to": "2026-03-31"}
    async with running(app) as client:
        rep = await client.get(
            "/v1/kpis/lead-intake",
            params=params,
            headers=await api_key(app, Role.REP, rep_id="rep-zhang"),
        )
        anonymous = await client.get("/v1/kpis/lead-intake", params=params)
    assert rep.status_code == 403
    assert rep.headers["content-type"] == "application/problem+json"
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-03-10", "to": "2026-03-09"}, "from"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),
        ({"from": "2026-3-9", "to": "2026-03-10"}, "from"),
        ({"from": "2026-03-09T00:00:00", "to": "2026-03-10"}, "from"),
        ({"from": "2026-03-09", "to": "2026-02-30"}, "to"),
        ({"from": "2026-03-09"}, "to"),
    ],
)
async def test_a_bad_period_is_a_problem_naming_the_field(
    app: FastAPI, params: dict[str, str], field: str
) -> None:
    async with running(app) as client:
        answer = await client.get(
            "/v1/kpis/lead-intake", params=params, headers=await api_key(app, Role.SUPERVISOR)
        )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in answer.json()["errors"]] == [field]


async def test_a_full_leap_year_is_one_period(app: FastAPI) -> None:
    async with running(app) as client:
        answer = await client.get(
            "/v1/kpis/lead-intake",
            params={"from": "2028-01-01", "to": "2028-12-31"},
            headers=await api_key(app, Role.SUPERVISOR),
        )
    assert answer.status_code == 200


async def test_the_service_is_ready_and_lists_the_lead_events_it_counts(app: FastAPI) -> None:
    async with running(app) as client:
        ready = await client.get("/readyz")
        document = (await client.get("/asyncapi.json")).json()
    assert ready.status_code == 200
    assert ready.json()["checks"]["consumers"] == "ok"
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert "salesrail.lead.received" in addresses
