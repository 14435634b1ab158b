"""sla-monitor killed with SIGKILL while 10 k clocks come due: after restart every alert
exists once in the database and once on NATS."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from sqlalchemy import func, select

from salesrail.cluster import SERVICES
from salesrail.db.database import Database
from salesrail.events.catalog import LeadReceived
from salesrail.events.envelope import Envelope, new_event_id
from sla_monitor.models import SlaAlert
from tests.support.bus import envelope_of, wait_for_messages
from tests.support.processes import ServiceProcess
from tests.support.servers import PostgresDatabases

SLA_MONITOR = next(s for s in SERVICES if s.name == "sla-monitor")
CLOCKS = 10_000


@pytest.fixture
async def service(
    tmp_path: Path, fresh_nats_url: str, postgres_databases: PostgresDatabases
) -> ServiceProcess:
    env = {
        "SALESRAIL_NATS_URL": fresh_nats_url,
        "SALESRAIL_DATA_DIR": str(tmp_path),
        "SALESRAIL_DATABASE_URL": await postgres_databases.create("sla"),
        "SALESRAIL_AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}",
        "SALESRAIL_LOG_LEVEL": "WARNING",
        # Events the killed process had fetched come back soon, not after a minute.
        "SALESRAIL_CONSUMER_ACK_WAIT_S": "3",
        # Small firing batches: the kill lands between committed batches and inside one.
        "SALESRAIL_SLA_MONITOR_FIRE_BATCH_SIZE": "200",
    }
    return ServiceProcess(SLA_MONITOR, env=env, log_path=tmp_path / "sla-monitor.log")


async def _publish_leads(nats_url: str, leads: list[str], received_at: datetime) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        futures = []
        for lead_id in leads:
            data = LeadReceived(
                lead_id=lead_id,
                source="import",
                company_name="宁波某某机械有限公司",
                city="宁波",
                category="机床",
                received_at=received_at,
            )
            envelope = Envelope(
                id=new_event_id(),
                type=data.event_type,
                occurred_at=datetime.now(UTC),
                source="test",
                data=data.model_dump(mode="json"),
            )
            futures.append(
                await js.publish_async(
                    envelope.subject,
                    envelope.model_dump_json().encode(),
                    headers={"Nats-Msg-Id": envelope.id},
                )
            )
        await asyncio.gather(*futures)
    finally:
        await nc.close()


async def _alerts_stored(db: Database) -> int:
    async with db.transaction() as session:
        return await session.scalar(select(func.count()).select_from(SlaAlert)) or 0


async def test_a_sigkill_while_10k_clocks_fire_loses_and_duplicates_no_alert(
    service: ServiceProcess, fresh_nats_url: str
) -> None:
    leads = [f"k9-{uuid.uuid4().hex[:10]}-{i}" for i in range(CLOCKS)]
    db = Database(service.env["SALESRAIL_DATABASE_URL"])
    service.start()
    service.wait_ready()
    try:
        # Due as they are created: the kill lands while clocks are created and fired.
        due = datetime.now(UTC) + timedelta(seconds=2)
        await _publish_leads(fresh_nats_url, leads, due - timedelta(hours=48))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while await _alerts_stored(db) < CLOCKS // 5 and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        assert service.process is not None
        service.process.kill()  # SIGKILL, mid-firing
        assert service.wait_exit(15) == -9
        killed_at = await _alerts_stored(db)
        assert 0 < killed_at < CLOCKS, "the kill should land while clocks are firing"

        service.start()
        service.wait_ready()
        found = await wait_for_messages(
            fresh_nats_url,
            "salesrail.sla.alert.first_touch_48h",
            count=CLOCKS,
            timeout_s=60,
            settle_s=2.0,
        )
        stored = await _alerts_stored(db)
    finally:
        service.stop()
        await db.dispose()
    per_lead = Counter(envelope_of(m)["data"]["lead_id"] for m in found)
    assert set(per_lead) == set(leads)
    assert max(per_lead.values()) == 1
    assert stored == CLOCKS
