"""What integrators build on: the AsyncAPI document kept in docs, and the example subscriber."""

from __future__ import annotations

import importlib.util
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from salesrail.clock import FrozenClock
from salesrail.events.catalog import SlaAlert
from salesrail.events.envelope import Envelope
from sla_monitor.asyncapi_doc import render
from tests.service.sla_monitor.conftest import sla_app
from tests.support.apps import running
from tests.support.publishing import envelope_for, publish

ROOT = Path(__file__).resolve().parents[3]
DOCUMENT = ROOT / "docs" / "asyncapi" / "sla-monitor.json"


def test_the_asyncapi_document_in_docs_is_up_to_date() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == render(), (
        "docs/asyncapi/sla-monitor.json is stale: run "
        "`.venv/bin/python -m sla_monitor.asyncapi_doc docs/asyncapi/sla-monitor.json`"
    )


async def test_the_served_asyncapi_document_lists_every_sla_subject(app) -> None:  # type: ignore[no-untyped-def]
    async with running(app) as client:
        served = (await client.get("/asyncapi.json")).json()
    assert served == json.loads(DOCUMENT.read_text(encoding="utf-8"))
    addresses = {channel["address"] for channel in served["channels"].values()}
    assert {
        "salesrail.sla.warning.*",
        "salesrail.sla.alert.*",
        "salesrail.sla.escalation.*",
        "salesrail.sla.alert_retracted",
        "salesrail.sla.followup_requested",
        "salesrail.sla.alert_acknowledged",
        "salesrail.notify.requested",
    } <= addresses
    alert = served["components"]["schemas"]["SlaAlert"]["properties"]
    assert {"rule", "lead_id", "owner_id", "due_at", "fired_at", "notify", "severity"} <= set(alert)


def _example() -> Any:
    spec = importlib.util.spec_from_file_location(
        "sla_alert_subscriber", ROOT / "examples" / "sla_alert_subscriber.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _alert(lead_id: str) -> SlaAlert:
    now = datetime.now(UTC)
    return SlaAlert(
        rule="first_touch_48h",
        lead_id=lead_id,
        owner_id="rep-1",
        due_at=now,
        fired_at=now,
        notify=["rep:rep-1"],
        severity="high",
    )


def _published_alert(lead_id: str) -> Envelope:
    envelope = envelope_for(_alert(lead_id), source="sla-monitor")
    envelope.type = "sla.alert.first_touch_48h"
    return envelope


@pytest.fixture
def app_on_fresh_nats(
    clock: FrozenClock,
    database_url: str,
    auth_database_url: str,
    fresh_nats_url: str,
    tmp_path: Path,
) -> FastAPI:
    return sla_app(
        clock,
        database_url=database_url,
        auth_database_url=auth_database_url,
        nats_url=fresh_nats_url,
        data_dir=tmp_path,
    )


async def test_the_example_subscriber_is_durable_and_resumes_where_it_stopped(
    fresh_nats_url: str, app_on_fresh_nats: FastAPI
) -> None:
    example = _example()
    first, second = f"lead-{uuid.uuid4()}", f"lead-{uuid.uuid4()}"
    seen: list[str] = []

    async def keep(envelope: dict[str, Any]) -> None:
        seen.append(envelope["data"]["lead_id"])

    async with running(app_on_fresh_nats):  # creates the streams, as the cluster does
        await publish(fresh_nats_url, _published_alert(first))
        assert await example.listen(fresh_nats_url, "crm", keep, stop_after=1) == 1
        await publish(fresh_nats_url, _published_alert(second))
        # Same durable name: only what came since, not the first alert again.
        assert await example.listen(fresh_nats_url, "crm", keep, stop_after=1) == 1
    assert seen == [first, second]
