"""The outbox survives a SIGKILL at the worst moments: each event arrives exactly once."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from salesrail.auth.principal import Role
from salesrail.cluster import SERVICES
from tests.support.bus import envelope_of, wait_for_messages
from tests.support.processes import ServiceProcess, api_key_in
from tests.support.servers import PostgresDatabases

LEAD_ROUTER = next(s for s in SERVICES if s.name == "lead-router")


def _lead(external_id: str) -> dict[str, str]:
    return {
        "source": "expo",
        "external_id": external_id,
        "company_name": "宁波某某机械有限公司",
        "contact_name": "李经理",
        "phone": "13912345678",
        "city": "宁波",
        "category": "机床",
    }


@pytest.fixture
async def service(
    tmp_path: Path, fresh_nats_url: str, postgres_databases: PostgresDatabases
) -> ServiceProcess:
    env = {
        "SALESRAIL_NATS_URL": fresh_nats_url,
        "SALESRAIL_DATA_DIR": str(tmp_path),
        "SALESRAIL_DATABASE_URL": await postgres_databases.create("lr"),
        "SALESRAIL_AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}",
    }
    return ServiceProcess(LEAD_ROUTER, env=env, log_path=tmp_path / "lead-router.log")


async def _api_key(service: ServiceProcess) -> str:
    auth_url = service.env["SALESRAIL_AUTH_DATABASE_URL"]
    return await api_key_in(auth_url, Role.INTEGRATION, "crash-test")


def _post_until_crash(service: ServiceProcess, key: str, external_id: str) -> None:
    """The process may die before it answers: the commit happened, the reply may not."""
    try:
        response = httpx.post(
            f"{service.url}/v1/leads",
            json=_lead(external_id),
            headers={"X-API-Key": key},
            timeout=10,
        )
        assert response.status_code == 201, response.text
    except httpx.HTTPError:
        pass
    assert service.wait_exit(15) == -9, service.logs()


@pytest.mark.parametrize("crash_point", ["relay.before_publish", "relay.after_publish"])
async def test_a_sigkill_between_commit_and_publish_loses_and_duplicates_nothing(
    service: ServiceProcess, fresh_nats_url: str, crash_point: str
) -> None:
    key = await _api_key(service)
    external_id = f"crash-{uuid.uuid4().hex}"
    ours = lambda e: e.get("data", {}).get("external_id") == external_id  # noqa: E731

    service.start(SALESRAIL_FAULTS=json.dumps([crash_point]))
    service.wait_ready()
    _post_until_crash(service, key, external_id)

    before_restart = await wait_for_messages(
        fresh_nats_url, "salesrail.lead.received", where=ours, timeout_s=1.0
    )
    expected_before = 0 if crash_point == "relay.before_publish" else 1
    assert len(before_restart) == expected_before

    service.start()  # no fault this time
    service.wait_ready()
    try:
        messages = await wait_for_messages(
            fresh_nats_url, "salesrail.lead.received", where=ours, settle_s=2.0
        )
        # The lead itself was committed before the crash, and a retry finds it.
        replay = httpx.post(
            f"{service.url}/v1/leads", json=_lead(external_id), headers={"X-API-Key": key}
        )
    finally:
        assert service.stop() == 0, service.logs()
    assert len(messages) == 1
    assert replay.status_code == 200
    assert envelope_of(messages[0])["data"]["lead_id"] == replay.json()["id"]
