"""With its database unreachable sla-monitor fires nothing and does not crash; when the
database is back, everything that came due meanwhile fires, once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from salesrail.clock import FrozenClock
from salesrail.embedded_nats import free_port
from tests.service.sla_monitor.conftest import NOW, event, lead_received, sla_app
from tests.support.apps import running, runtime
from tests.support.bus import envelope_of, wait_for_messages
from tests.support.publishing import publish, wait_until_consumed

LEADS = 20


class CuttableProxy:
    """A TCP proxy to PostgreSQL that the test can cut (every connection, and new ones
    refused) and restore, as a network outage would."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_nothing_fires_while_the_database_is_away_and_all_fires_once_it_is_back(
    postgres_url, auth_database_url, nats_url, tmp_path: Path
):  # type: ignore[no-untyped-def]
    url = make_url(postgres_url)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    clock = FrozenClock(NOW)
    app = sla_app(
        clock,
        database_url=url.set(port=proxy.port).render_as_string(hide_password=False),
        auth_database_url=auth_database_url,
        nats_url=nats_url,
        data_dir=tmp_path,
    )
    batch = uuid.uuid4().hex[:8]
    leads = [f"outage-{batch}-{i}" for i in range(LEADS)]
    ours = lambda e: e["data"]["lead_id"].startswith(f"outage-{batch}-")  # noqa: E731
    async with running(app):
        await publish(nats_url, *(event(lead_received(lead, NOW), at=NOW) for lead in leads))
        assert await wait_until_consumed(nats_url, "SALESRAIL_LEAD", "sla-monitor-leads")
        await proxy.cut()
        clock.set(NOW + timedelta(hours=49))
        runtime(app).context.scheduler.nudge()
        during = await wait_for_messages(
            nats_url, "salesrail.sla.alert.first_touch_48h", where=ours, timeout_s=2.0
        )
        assert runtime(app).context.scheduler.running, "the scheduler keeps trying"
        await proxy.start()
        after = await wait_for_messages(
            nats_url,
            "salesrail.sla.alert.first_touch_48h",
            where=ours,
            count=LEADS,
            timeout_s=30,
            settle_s=1.0,
        )
    await proxy.cut()
    assert during == []
    per_lead = Counter(envelope_of(m)["data"]["lead_id"] for m in after)
    assert set(per_lead) == set(leads) and max(per_lead.values()) == 1
