"""untouched_72h end to end: sla-monitor's alert makes lead-router release the lead to the
pool and route it to someone else (both services as real processes, real NATS and
PostgreSQL). The policy's duration is shortened through /v1/policies: policies are data."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from salesrail.auth.api_keys import ApiKeyStore
from salesrail.auth.principal import Role
from salesrail.clock import system_clock
from salesrail.cluster import SERVICES
from salesrail.db.database import Database
from sla_monitor.policybook import DEFAULTS
from tests.support.bus import envelope_of, wait_for_messages
from tests.support.processes import ServiceProcess
from tests.support.publishing import eventually
from tests.support.routing import HANGZHOU_ROUND_ROBIN
from tests.support.servers import PostgresDatabases


@pytest.fixture
async def services(tmp_path: Path, fresh_nats_url: str, postgres_databases: PostgresDatabases):  # type: ignore[no-untyped-def]
    env = {
        "SALESRAIL_NATS_URL": fresh_nats_url,
        "SALESRAIL_DATA_DIR": str(tmp_path / "var"),
        "SALESRAIL_AUTH_DATABASE_URL": await postgres_databases.create("auth"),
    }
    processes = {}
    for spec in SERVICES:
        if spec.name in ("lead-router", "sla-monitor"):
            env[f"{spec.env_prefix}DATABASE_URL"] = await postgres_databases.create(spec.module)
            processes[spec.name] = ServiceProcess(
                spec, env=env, log_path=tmp_path / f"{spec.name}.log"
            )
    try:
        for process in processes.values():
            process.start()
        for process in processes.values():
            process.wait_ready()
        yield processes, env
    finally:
        for process in processes.values():
            process.stop()


async def _key(env: dict[str, str]) -> dict[str, str]:
    db = Database(env["SALESRAIL_AUTH_DATABASE_URL"])
    try:
        store = ApiKeyStore(db, clock=system_clock)
        await store.migrate()
        return {"X-API-Key": await store.create(role=Role.ADMIN, name="e2e-sla")}
    finally:
        await db.dispose()


async def test_an_untouched_lead_is_released_and_rerouted_by_the_sla_alert(
    services, fresh_nats_url: str
) -> None:  # type: ignore[no-untyped-def]
    processes, env = services
    router, sla = processes["lead-router"].url, processes["sla-monitor"].url
    admin = await _key(env)
    async with httpx.AsyncClient(headers=admin, timeout=10) as http:
        await http.put(f"{router}/v1/teams/east", json={"name": "华东", "supervisor_id": "sup-wu"})
        for rep in ("rep-zhang", "rep-li"):
            body = {"name": rep, "team_id": "east", "cities": ["杭州"]}
            answer = await http.put(f"{router}/v1/reps/{rep}", json=body)
            assert answer.status_code in (200, 201), answer.text
        answer = await http.put(f"{router}/v1/rules/routing", json={"yaml": HANGZHOU_ROUND_ROBIN})
        assert answer.status_code == 200, answer.text
        # 72 h become 2 s: the same policy, alert subject and payload, a shorter clock.
        policies = DEFAULTS.read_text(encoding="utf-8").replace(
            "    duration: 72h\n", "    duration: 2s\n", 1
        )
        answer = await http.put(f"{sla}/v1/policies", json={"yaml": policies})
        assert answer.status_code == 200, answer.text
        lead = {
            "source": "website",
            "company_name": "杭州某某紧固件有限公司",
            "contact_name": "王总",
            "phone": "13812345678",
            "city": "杭州",
            "category": "紧固件",
        }
        created = await http.post(f"{router}/v1/leads", json=lead)
        assert created.status_code == 201, created.text
        lead_id, first_owner = created.json()["id"], created.json()["owner_id"]

        ours = lambda e: e["data"].get("lead_id") == lead_id  # noqa: E731
        alerts = await wait_for_messages(
            fresh_nats_url, "salesrail.sla.alert.untouched_72h", where=ours, timeout_s=20
        )
        pooled = await wait_for_messages(
            fresh_nats_url, "salesrail.lead.pooled", where=ours, timeout_s=20
        )
        routed = await wait_for_messages(
            fresh_nats_url, "salesrail.lead.routed", where=ours, count=2, timeout_s=20
        )

        async def cycles() -> list[int]:
            answer = await http.get(f"{sla}/v1/clocks", params={"lead_id": lead_id})
            return [c["cycle"] for c in answer.json()["clocks"] if c["policy"] == "untouched_72h"]

        untouched = await eventually(cycles, until=lambda found: len(found) >= 2)
    assert first_owner == "rep-zhang"
    assert envelope_of(alerts[0])["data"]["owner_id"] == "rep-zhang"
    assert envelope_of(pooled[0])["data"]["previous_owner_id"] == "rep-zhang"
    assert envelope_of(routed[1])["data"]["owner_id"] == "rep-li"
    # The re-route started the clock's next cycle, for the new owner.
    assert untouched[:2] == [1, 2]
