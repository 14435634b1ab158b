"""sla-monitor as a process on its own nats-server and a fresh PostgreSQL database (issue 6).

Three measurements, one after the other on the same service database:

- ``sla_clock_creation_per_s``: `lead.received` events published before the service starts
  (so the figure is the consumer's, not the publisher's), then the time until the service's
  durable consumer has applied and acknowledged them all (each starts a first_touch_48h
  clock). Target ≥ 5 k events/s.
- ``sla_overdue_fire_seconds``: the service stopped, `overdue` running clocks already past
  their deadline written straight into the database (COPY), the service started again; the
  time from start until every alert is stored and on NATS, and a check that each fired once.
  Target: 100 k within 60 s.
- ``sla_firing_lateness_p99`` and ``sla_rss_max_mb``: the service stopped, `open` clocks due
  days ahead plus `due_per_s` clocks per second coming due over `due_seconds` written, the
  service started; lateness = fired_at - deadline of those alerts, RSS of the service process
  sampled meanwhile. Targets: p99 ≤ 1 s with 1 M open clocks; RSS < 500 MB.

Options: ``--set sla.events=50000 sla.overdue=100000 sla.open=1000000 sla.due_per_s=100
sla.due_seconds=20 sla.batch=500 sla.fire_batch=1000`` (consumer and firing batch sizes).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import nats

from bench import REPO_ROOT, Context, Figure
from bench.servers import ServerProcess, free_port, start_process

NAME = "sla_clocks"
REQUIRES: tuple[str, ...] = ()
POSTGRES_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
_CLOCK_COLUMNS = (
    "policy",
    "policy_version",
    "entity_type",
    "entity_id",
    "cycle",
    "is_current",
    "lead_id",
    "state",
    "started_at",
    "due_at",
    "next_step",
    "next_fire_at",
    "created_at",
)


class _Stack:
    def __init__(self, batch: int, fire_batch: int) -> None:
        from salesrail.embedded_nats import EmbeddedNats

        self.run_id = uuid.uuid4().hex[:8]
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-sla-"))
        self.nats = EmbeddedNats(
            store_dir=self.tmp / "nats", port=free_port(), server_name=f"bench-sla-{self.run_id}"
        )
        self.nats.start()
        self.db_name = f"bench_sla_{self.run_id}"
        asyncio.run(self._admin(f'CREATE DATABASE "{self.db_name}"'))
        self.dsn = POSTGRES_DSN.rsplit("/", 1)[0] + "/" + self.db_name
        self.batch = batch
        self.fire_batch = fire_batch
        self.server: ServerProcess | None = None

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def start(self) -> float:
        port = free_port()
        env = {
            "SALESRAIL_NATS_URL": self.nats.url,
            "SALESRAIL_DATABASE_URL": self.dsn.replace("postgresql://", "postgresql+asyncpg://"),
            "SALESRAIL_AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{self.tmp / 'auth.db'}",
            "SALESRAIL_DATA_DIR": str(self.tmp / "data"),
            "SALESRAIL_SLA_MONITOR_PORT": str(port),
            "SALESRAIL_LOG_LEVEL": "WARNING",
            "SALESRAIL_CONSUMER_BATCH_SIZE": str(self.batch),
            "SALESRAIL_SLA_MONITOR_FIRE_BATCH_SIZE": str(self.fire_batch),
            "SALESRAIL_OUTBOX_BATCH_SIZE": "2000",
        }
        started = time.monotonic()
        self.server = start_process(
            [sys.executable, "-m", "sla_monitor"],
            port,
            env=env,
            cwd=REPO_ROOT,
            ready_path="/healthz",
            timeout=120,
            description="sla-monitor (1 uvicorn worker)",
            log_path=self.tmp / "sla-monitor.log",
        )
        return started

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def rss_mb(self) -> float:
        assert self.server is not None
        for line in Path(f"/proc/{self.server.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        self.stop()
        self.nats.stop()
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        if not os.environ.get("BENCH_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    async def scalar(self, sql: str) -> Any:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    async def copy_clocks(self, rows: list[tuple[Any, ...]]) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.copy_records_to_table("clocks", records=rows, columns=_CLOCK_COLUMNS)
            await conn.execute("ANALYZE clocks")
        finally:
            await conn.close()


def _clock(lead_id: str, due: datetime, now: datetime) -> tuple[Any, ...]:
    started = due - timedelta(hours=48)
    return (
        "first_touch_48h", 1, "lead", lead_id, 1, True, lead_id, "running",
        started, due, 0, due, now,
    )  # fmt: skip


async def _publish_received(nats_url: str, count: int) -> None:
    from salesrail.events.catalog import LeadReceived
    from salesrail.events.envelope import Envelope, new_event_id
    from salesrail.events.streams import ensure_streams

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, duplicate_window_s=120)
        now = datetime.now(UTC)
        pending = []
        for i in range(count):
            data = LeadReceived(
                lead_id=f"bench-{i}",
                source="bench",
                company_name="宁波某某机械有限公司",
                city="宁波",
                category="机床",
                received_at=now,
            )
            envelope = Envelope(
                id=new_event_id(),
                type=data.event_type,
                occurred_at=now,
                source="bench",
                data=data.model_dump(mode="json"),
            )
            pending.append(
                await js.publish_async(
                    envelope.subject,
                    envelope.model_dump_json().encode(),
                    headers={"Nats-Msg-Id": envelope.id},
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await nc.close()


async def _consumer_settled(
    nats_url: str, timeout_s: float
) -> tuple[bool, tuple[float, int] | None]:
    """Whether the consumer applied everything, and when (monotonic) it had first acknowledged
    something, with how many it had by then: the steady-state rate leaves start-up out."""
    nc = await nats.connect(nats_url)
    first: tuple[float, int] | None = None
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                info = await js.consumer_info("SALESRAIL_LEAD", "sla-monitor-leads")
            except Exception:  # noqa: BLE001 - not created yet
                await asyncio.sleep(0.05)
                continue
            acked = info.ack_floor.stream_seq if info.ack_floor else 0
            if first is None and acked:
                first = (time.monotonic(), acked)
            if not info.num_pending and not info.num_ack_pending:
                return True, first
            await asyncio.sleep(0.05)
        return False, first
    finally:
        await nc.close()


async def _stream_alerts(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info("SALESRAIL_SLA")
        return info.state.messages
    finally:
        await nc.close()


def _creation(stack: _Stack, events: int) -> list[Figure]:
    asyncio.run(_publish_received(stack.nats.url, events))
    started = stack.start()
    settled, first = asyncio.run(_consumer_settled(stack.nats.url, timeout_s=600))
    finished = time.monotonic()
    elapsed = finished - started
    clocks = asyncio.run(stack.scalar("SELECT count(*) FROM clocks"))
    stack.stop()
    check = "" if settled and clocks == events else f"; CHECK FAILED: {clocks} clocks"
    return [
        Figure(
            "sla_clock_creation_per_s",
            events / elapsed,
            "events/s",
            f"{events:,} lead.received published first; from process start (migrations, "
            f"connect) to all applied and acked; consumer batch {stack.batch}{check}",
        ),
        Figure(
            "sla_clock_creation_steady_per_s",
            (events - first[1]) / (finished - first[0]) if first else float("nan"),
            "events/s",
            "the same run from the first acknowledged batch to the last (start-up left out)",
        ),
    ]


def _overdue(stack: _Stack, overdue: int) -> list[Figure]:
    asyncio.run(stack.scalar("TRUNCATE clocks"))
    now = datetime.now(UTC)
    rows = [
        _clock(f"overdue-{i}", now - timedelta(seconds=3600 * i / overdue), now)
        for i in range(overdue)
    ]
    asyncio.run(stack.copy_clocks(rows))
    del rows
    before = asyncio.run(_stream_alerts(stack.nats.url))
    started = stack.start()
    deadline = started + 300
    while time.monotonic() < deadline:
        stored = asyncio.run(stack.scalar("SELECT count(*) FROM alerts"))
        published = asyncio.run(_stream_alerts(stack.nats.url)) - before
        if stored >= overdue and published >= overdue:
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    distinct = asyncio.run(
        stack.scalar(
            "SELECT count(DISTINCT (policy, entity_type, entity_id, cycle, kind)) FROM alerts"
        )
    )
    time.sleep(2)
    published = asyncio.run(_stream_alerts(stack.nats.url)) - before
    stack.stop()
    ok = stored == distinct == overdue == published
    check = (
        "" if ok else f"; CHECK FAILED: {stored} stored, {distinct} distinct, {published} on NATS"
    )
    return [
        Figure(
            "sla_overdue_fire_seconds",
            elapsed,
            "s",
            f"{overdue:,} clocks overdue by 0-60 min at start; from process start to every "
            f"alert stored and on SALESRAIL_SLA, each once{check}",
        )
    ]


def _open_clocks(stack: _Stack, open_clocks: int, due_per_s: int, due_seconds: int) -> list[Figure]:
    asyncio.run(stack.scalar("TRUNCATE clocks, alerts"))
    now = datetime.now(UTC)
    rows = [
        _clock(f"open-{i}", now + timedelta(days=1 + 30 * i / open_clocks), now)
        for i in range(open_clocks)
    ]
    asyncio.run(stack.copy_clocks(rows))
    del rows
    # The clocks coming due are written once the million is in, due after the start.
    lead_in = 15.0
    now = datetime.now(UTC)
    due = due_per_s * due_seconds
    asyncio.run(
        stack.copy_clocks(
            [
                _clock(f"due-{i}", now + timedelta(seconds=lead_in + i / due_per_s), now)
                for i in range(due)
            ]
        )
    )
    copied = (datetime.now(UTC) - now).total_seconds()
    stack.start()
    rss: list[float] = []
    end = time.monotonic() + lead_in - copied + due_seconds + 5
    while time.monotonic() < end:
        rss.append(stack.rss_mb())
        time.sleep(0.5)
    lateness = asyncio.run(
        stack.scalar(
            "SELECT array_agg(EXTRACT(EPOCH FROM fired_at - point_at) ORDER BY 1) FROM alerts"
        )
    )
    stack.stop()
    values = sorted(float(v) for v in (lateness or []))
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))] if values else float("nan")
    check = "" if len(values) == due else f"; CHECK FAILED: {len(values)} of {due} fired"
    setup = (
        f"{open_clocks:,} open clocks due in 1-31 days, "
        f"{due_per_s}/s coming due for {due_seconds} s"
    )
    return [
        Figure("sla_firing_lateness_p99", p99, "s", f"{setup}; fired_at - deadline{check}"),
        Figure("sla_firing_lateness_max", values[-1] if values else float("nan"), "s", setup),
        Figure("sla_rss_max_mb", max(rss), "MB", f"{setup}; VmRSS sampled every 0.5 s"),
    ]


def run(ctx: Context) -> list[Figure]:
    events = int(ctx.options.get("sla.events", 50_000))
    overdue = int(ctx.options.get("sla.overdue", 100_000))
    open_clocks = int(ctx.options.get("sla.open", 1_000_000))
    due_per_s = int(ctx.options.get("sla.due_per_s", 100))
    due_seconds = int(ctx.options.get("sla.due_seconds", 20))
    stack = _Stack(
        batch=int(ctx.options.get("sla.batch", 500)),
        fire_batch=int(ctx.options.get("sla.fire_batch", 1000)),
    )
    try:
        figures = _creation(stack, events)
        figures += _overdue(stack, overdue)
        figures += _open_clocks(stack, open_clocks, due_per_s, due_seconds)
    finally:
        stack.close()
    return figures
