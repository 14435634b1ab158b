"""A service with several worker processes: each a full replica on one port, nothing doubled."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from salesrail.auth.principal import Role
from salesrail.cluster import SERVICES
from tests.support.bus import envelope_of, wait_for_messages
from tests.support.processes import ServiceProcess, api_key_in
from tests.support.servers import PostgresDatabases

LEAD_ROUTER = next(s for s in SERVICES if s.name == "lead-router")
LEADS = 40


def workers_of(pid: int) -> list[int]:
    """The worker processes uvicorn's supervisor spawned (not multiprocessing's helpers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def lead(n: int) -> dict[str, str]:
    return {
        "source": "website",
        "external_id": f"w-{n}",
        "company_name": f"测试{uuid.uuid4().hex[:8]}机械有限公司",
        "contact_name": "王总",
        "phone": "139" + str(uuid.uuid4().int)[:8],
        "city": "杭州",
        "category": "机床",
    }


async def test_two_workers_share_the_port_and_every_lead_is_stored_and_announced_once(
    tmp_path: Path, fresh_nats_url: str, postgres_databases: PostgresDatabases
) -> None:
    env = {
        "SALESRAIL_NATS_URL": fresh_nats_url,
        "SALESRAIL_DATA_DIR": str(tmp_path),
        "SALESRAIL_DATABASE_URL": await postgres_databases.create("workers"),
        "SALESRAIL_AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}",
        "SALESRAIL_LEAD_ROUTER_WORKERS": "2",
    }
    service = ServiceProcess(LEAD_ROUTER, env=env, log_path=tmp_path / "lead-router.log")
    key = await api_key_in(env["SALESRAIL_AUTH_DATABASE_URL"], Role.INTEGRATION, "workers")
    service.start()
    try:
        service.wait_ready()
        assert service.process is not None
        workers = workers_of(service.process.pid)
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            bodies = [lead(n) for n in range(LEADS)]
            answers = await asyncio.gather(
                *(client.post("/v1/leads", json=b, headers={"X-API-Key": key}) for b in bodies)
            )
            # A retry of each, now that they exist: answered from whichever worker, not stored.
            retries = await asyncio.gather(
                *(client.post("/v1/leads", json=b, headers={"X-API-Key": key}) for b in bodies)
            )
        received = await wait_for_messages(
            fresh_nats_url, "salesrail.lead.received", count=LEADS, settle_s=1.5
        )
        exit_code = service.stop()
    finally:
        service.stop()
    assert not [pid for pid in workers if alive(pid)]  # none left behind
    assert len(workers) >= 2, service.logs()  # the supervisor's two workers
    assert [a.status_code for a in answers] == [201] * LEADS
    assert [r.status_code for r in retries] == [200] * LEADS
    assert [r.json()["id"] for r in retries] == [a.json()["id"] for a in answers]
    ids = [envelope_of(m)["data"]["lead_id"] for m in received]
    assert sorted(ids) == sorted(a.json()["id"] for a in answers)  # each announced once
    assert exit_code == 0, service.logs()
