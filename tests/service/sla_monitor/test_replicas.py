"""Two sla-monitor replicas on one PostgreSQL database: every due clock fires exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from sla_monitor.models import SlaAlert
from tests.service.sla_monitor.conftest import NOW, event, lead_received, move_to, sla_app
from tests.support.apps import running, runtime
from tests.support.bus import envelope_of, wait_for_messages
from tests.support.publishing import publish, wait_until_consumed

CLOCKS = 2000


async def test_two_replicas_side_by_side_fire_each_alert_once(
    clock, postgres_url, auth_database_url, nats_url, tmp_path: Path
):  # type: ignore[no-untyped-def]
    batch = uuid.uuid4().hex[:8]
    leads = [f"rep-{batch}-{i}" for i in range(CLOCKS)]
    replicas = [
        sla_app(
            clock,
            database_url=postgres_url,
            auth_database_url=auth_database_url,
            nats_url=nats_url,
            data_dir=tmp_path / name,
        )
        for name in ("a", "b")
    ]
    async with running(replicas[0]), running(replicas[1]):
        await publish(
            nats_url,
            *(event(lead_received(lead, NOW - timedelta(hours=47)), at=NOW) for lead in leads),
        )
        assert await wait_until_consumed(nats_url, "SALESRAIL_LEAD", "sla-monitor-leads")
        # Both schedulers look at once, and keep looking while the other fires.
        for app in replicas:
            await move_to(app, clock, NOW + timedelta(hours=1))
        found = await wait_for_messages(
            nats_url,
            "salesrail.sla.alert.first_touch_48h",
            count=CLOCKS,
            where=lambda e: e["data"]["lead_id"].startswith(f"rep-{batch}-"),
            timeout_s=60,
            settle_s=1.0,
        )
        async with runtime(replicas[0]).unit_of_work() as uow:
            stored = await uow.session.scalar(select(func.count()).select_from(SlaAlert))
        fired_by = [runtime(app).context.scheduler.fired_total for app in replicas]
    per_lead = Counter(envelope_of(m)["data"]["lead_id"] for m in found)
    assert len(per_lead) == CLOCKS
    assert max(per_lead.values()) == 1
    assert stored == CLOCKS
    assert sum(fired_by) == CLOCKS
