"""The five services as real processes on real NATS and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from salesrail.cluster import SERVICES
from tests.support.bus import envelope_of, wait_for_messages
from tests.support.processes import ServiceProcess
from tests.support.servers import PostgresDatabases

SALESRAIL = str(Path(sys.executable).parent / "salesrail")


@pytest.fixture
async def cluster_env(
    tmp_path: Path, fresh_nats_url: str, postgres_databases: PostgresDatabases
) -> dict[str, str]:
    env = {
        "SALESRAIL_NATS_URL": fresh_nats_url,
        "SALESRAIL_DATA_DIR": str(tmp_path / "var"),
        "SALESRAIL_AUTH_DATABASE_URL": await postgres_databases.create("auth"),
    }
    for spec in SERVICES:
        env[f"{spec.env_prefix}DATABASE_URL"] = await postgres_databases.create(spec.module)
    return env


@pytest.fixture
def cluster(cluster_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, ServiceProcess]]:
    processes = {
        spec.name: ServiceProcess(spec, env=cluster_env, log_path=tmp_path / f"{spec.name}.log")
        for spec in SERVICES
    }
    try:
        for process in processes.values():
            process.start()
        for process in processes.values():
            process.wait_ready()
        yield processes
    finally:
        codes = {name: p.stop() for name, p in processes.items()}  # every one, whatever happens
    stuck = {name: processes[name].logs()[-3000:] for name, code in codes.items() if code != 0}
    assert not stuck, f"services that did not stop cleanly on SIGTERM: {stuck}"


def create_key(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [SALESRAIL, "keys", "create", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"stdout must hold the key and nothing else: {result.stdout!r}"
    assert lines[0].startswith("srk_")
    return lines[0]


def found(url: str, headers: dict[str, str]) -> dict[str, Any] | None:
    response = httpx.get(url, headers=headers)
    return response.json() if response.status_code == 200 else None


def eventually(probe: Any, timeout_s: float = 15.0) -> Any:
    """Poll until `probe()` returns something truthy (another service is catching up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


async def test_a_lead_posted_to_the_cluster_flows_to_every_service(
    cluster: dict[str, ServiceProcess], cluster_env: dict[str, str], fresh_nats_url: str
) -> None:
    marketing = {"X-API-Key": create_key(cluster_env, "--role", "integration", "--name", "web")}
    admin = {"X-API-Key": create_key(cluster_env, "--role", "admin")}
    received_at = datetime.now(UTC) - timedelta(hours=2)
    lead = {
        "source": "website",
        "company_name": "杭州某某紧固件有限公司",
        "contact_name": "王总",
        "phone": "13812345678",
        "city": "杭州",
        "category": "紧固件",
        "received_at": received_at.isoformat(),
    }
    url = {name: p.url for name, p in cluster.items()}

    answer = httpx.post(f"{url['lead-router']}/v1/leads", json=lead, headers=marketing)
    assert answer.status_code == 201, answer.text
    lead_id = answer.json()["id"]

    received = await wait_for_messages(
        fresh_nats_url,
        "salesrail.lead.received",
        where=lambda e: e["data"]["lead_id"] == lead_id,
    )
    assert len(received) == 1
    assert envelope_of(received[0])["source"] == "lead-router"

    stage = eventually(lambda: found(f"{url['activity']}/v1/leads/{lead_id}/stage", admin))
    assert stage is not None and stage["stage"] == "contact"

    clocks = eventually(
        lambda: httpx.get(
            f"{url['sla-monitor']}/v1/clocks", params={"lead_id": lead_id}, headers=admin
        ).json()["clocks"]
    )
    assert [c["policy"] for c in clocks] == ["first_touch_48h"]
    assert datetime.fromisoformat(clocks[0]["due_at"]) == received_at + timedelta(hours=48)

    day = received_at.astimezone(ZoneInfo("Asia/Shanghai")).date()
    intake = eventually(
        lambda: httpx.get(
            f"{url['metrics']}/v1/kpis/lead-intake",
            params={"from": day.isoformat(), "to": day.isoformat()},
            headers=admin,
        ).json()["total"]
    )
    assert intake == 1

    ticket = httpx.post(
        f"{url['collab']}/v1/tickets",
        json={"kind": "technical_support", "lead_id": lead_id, "title": "设备选型方案"},
        headers=admin,
    )
    assert ticket.status_code == 201, ticket.text
    opened = await wait_for_messages(
        fresh_nats_url,
        "salesrail.collab.ticket.opened",
        where=lambda e: e["data"]["ticket_id"] == ticket.json()["id"],
    )
    assert len(opened) == 1

    for name, process in cluster.items():
        metrics = httpx.get(f"{process.url}/metrics")
        assert metrics.status_code == 200 and "salesrail_http_requests_total" in metrics.text, name
        assert "13812345678" not in process.logs(), f"{name} logged a full phone number"
