"""sla-monitor in the test process, on a real bus and database, with a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from salesrail.clock import FrozenClock
from salesrail.events.catalog import EventData, LeadReceived
from salesrail.events.envelope import Envelope, new_event_id
from sla_monitor.config import Settings
from sla_monitor.main import create_app
from tests.support.apps import runtime
from tests.support.bus import envelope_of, wait_for_messages

# Whole seconds, in the past: received_at and deadlines compare exactly.
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


def sla_app(
    clock: FrozenClock, *, database_url: str, auth_database_url: str, nats_url: str, data_dir: Path
) -> FastAPI:
    return create_app(
        Settings(
            database_url=database_url,
            auth_database_url=auth_database_url,
            nats_url=nats_url,
            data_dir=data_dir,
            scheduler_max_sleep_s=0.2,
            outbox_poll_interval_s=0.2,
        ),
        clock=clock,
    )


@pytest.fixture
def app(
    clock: FrozenClock, database_url: str, auth_database_url: str, nats_url: str, tmp_path: Path
) -> FastAPI:
    return sla_app(
        clock,
        database_url=database_url,
        auth_database_url=auth_database_url,
        nats_url=nats_url,
        data_dir=tmp_path,
    )


@pytest.fixture
def pg_app(
    clock: FrozenClock, postgres_url: str, auth_database_url: str, nats_url: str, tmp_path: Path
) -> FastAPI:
    return sla_app(
        clock,
        database_url=postgres_url,
        auth_database_url=auth_database_url,
        nats_url=nats_url,
        data_dir=tmp_path,
    )


def event(data: EventData, *, at: datetime, event_type: str | None = None) -> Envelope:
    """The envelope a producer writes for something that happened at `at`."""
    return Envelope(
        id=new_event_id(),
        type=event_type or data.event_type,
        occurred_at=at,
        source="test",
        data=data.model_dump(mode="json", by_alias=True),
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


async def move_to(app: FastAPI, clock: FrozenClock, at: datetime) -> None:
    """Set the service's clock and have its scheduler look at once."""
    clock.set(at)
    runtime(app).context.scheduler.nudge()


async def clocks_of(
    client: httpx.AsyncClient, lead_id: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    answer = await client.get("/v1/clocks", params={"lead_id": lead_id}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["clocks"]


async def signals(
    nats_url: str,
    subject: str,
    *,
    entity_id: str,
    count: int = 1,
    timeout_s: float = 10.0,
    settle_s: float = 0.0,
) -> list[dict[str, Any]]:
    """The envelopes on `subject` about one entity (a lead, ticket or rep)."""

    def about(envelope: dict[str, Any]) -> bool:
        data = envelope.get("data", {})
        return entity_id in (data.get("lead_id"), data.get("entity_id"), data.get("ticket_id"))

    found = await wait_for_messages(
        nats_url, subject, count=count, where=about, timeout_s=timeout_s, settle_s=settle_s
    )
    return [envelope_of(m) for m in found]
