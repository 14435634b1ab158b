"""activity as a real process on its own NATS and PostgreSQL, for the activity benchmarks.

    with ActivityStack("activities") as stack:   # nats-server, 2 fresh databases, the service
        stack.seed_leads(2_000)                  # leads owned by REP, straight into its table
        run_load(stack.url("/v1/activities"), varying_body=..., headers=stack.rep, ...)

Everything started here is ours alone and is stopped on leaving the block: the nats-server (a
free port, a temporary directory), the two uniquely named databases (dropped WITH FORCE) and
the activity process (SIGTERM, then SIGKILL). Leads are written to activity's own `leads`
table, as its lead consumer would have written them from lead-router's events.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import REPO_ROOT
from bench.intake_stack import POSTGRES_DSN, stream_counts
from bench.servers import ServerProcess, free_port, start_process

REP = "bench-rep"
TEAM = "bench-east"
COMPANY = "杭州鑫盛紧固件有限公司"


def lead_id(n: int) -> str:
    return f"bench-lead-{n}"


class ActivityStack:
    """nats-server + two fresh PostgreSQL databases + activity (one uvicorn worker)."""

    def __init__(self, label: str, *, extra_env: dict[str, str] | None = None) -> None:
        self.label = label
        self.run_id = uuid.uuid4().hex[:8]
        self.extra_env = extra_env or {}
        self.tmp: Path | None = None
        self.nats: Any = None
        self.server: ServerProcess | None = None
        self.databases: list[str] = []
        self.rep: dict[str, str] = {}
        self.ops: dict[str, str] = {}

    def __enter__(self) -> ActivityStack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        from salesrail.embedded_nats import EmbeddedNats

        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{self.label}-"))
        self.nats = EmbeddedNats(
            store_dir=self.tmp / "nats",
            port=free_port(),
            server_name=f"bench-{self.label}-{self.run_id}",
        )
        self.nats.start()
        db = f"bench_{self.label}_{self.run_id}"
        self.database_dsn = self._create_database(db)
        self.auth_database_dsn = self._create_database(f"{db}_auth")
        self.rep, self.ops = asyncio.run(self._create_keys())
        port = free_port()
        self.log_path = self.tmp / "activity.log"
        env = {
            "SALESRAIL_NATS_URL": self.nats.url,
            "SALESRAIL_DATABASE_URL": _sqlalchemy_url(self.database_dsn),
            "SALESRAIL_AUTH_DATABASE_URL": _sqlalchemy_url(self.auth_database_dsn),
            "SALESRAIL_DATA_DIR": str(self.tmp / "data"),
            "SALESRAIL_ACTIVITY_PORT": str(port),
            "SALESRAIL_ACTIVITY_HOST": "127.0.0.1",
            "SALESRAIL_LOG_LEVEL": "WARNING",
            "SALESRAIL_LOG_JSON": "true",
            "SALESRAIL_SHUTDOWN_GRACE_S": "5",
            **self.extra_env,
        }
        self.server = start_process(
            [sys.executable, "-m", "activity"],
            port,
            env=env,
            cwd=REPO_ROOT,
            ready_path="/healthz",
            timeout=60,
            description="activity (1 uvicorn worker)",
            log_path=self.log_path,
        )
        self._wait_ready()

    def close(self) -> None:
        errors: list[BaseException] = []
        for stop in (self._stop_server, self._stop_nats, self._drop_all):
            try:
                stop()
            except BaseException as exc:  # noqa: BLE001 - clean up the rest regardless
                errors.append(exc)
        if self.tmp is not None and not os.environ.get("BENCH_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        if errors:
            raise errors[0]

    def _stop_server(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            server.stop()

    def _stop_nats(self) -> None:
        if self.nats is not None:
            nats, self.nats = self.nats, None
            nats.stop()

    def _drop_all(self) -> None:
        if self.databases:
            asyncio.run(self._drop_databases())

    # --- set-up ----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        assert self.server is not None
        return self.server.url(path)

    def _wait_ready(self, timeout: float = 60.0) -> None:
        assert self.server is not None
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.server.proc.poll() is not None:
                raise RuntimeError(f"activity exited:\n{self.server.log_tail()}")
            try:
                answer = httpx.get(self.url("/readyz"), timeout=2)
                if answer.status_code == 200:
                    return
                last = answer.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise TimeoutError(
            f"activity not ready in {timeout:.0f}s: {last}\n{self.server.log_tail()}"
        )

    def seed_leads(self, count: int) -> None:
        """`count` leads owned by REP (team TEAM), at stage contact, as the consumer keeps them."""
        now = datetime.now(UTC)
        rows = [
            (lead_id(n), COMPANY, "杭州", "紧固件", now, REP, "contact", now, TEAM, now, 0, "{}")
            for n in range(count)
        ]
        asyncio.run(
            self._copy(
                "leads",
                rows,
                [
                    "lead_id",
                    "company_name",
                    "city",
                    "category",
                    "received_at",
                    "owner_id",
                    "stage",
                    "updated_at",
                    "team_id",
                    "owner_changed_at",
                    "version",
                    "dossier",
                ],
            )
        )

    async def _copy(self, table: str, rows: list[tuple[Any, ...]], columns: list[str]) -> None:
        conn = await asyncpg.connect(self.database_dsn)
        try:
            await conn.copy_records_to_table(table, records=rows, columns=columns)
            await conn.execute(f"ANALYZE {table}")
        finally:
            await conn.close()

    def _create_database(self, name: str) -> str:
        async def create() -> None:
            conn = await asyncpg.connect(POSTGRES_DSN)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        self.databases.append(name)
        return POSTGRES_DSN.rsplit("/", 1)[0] + "/" + name

    async def _drop_databases(self) -> None:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            while self.databases:
                name = self.databases.pop()
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    async def _create_keys(self) -> tuple[dict[str, str], dict[str, str]]:
        from salesrail.auth import Role
        from salesrail.auth.api_keys import ApiKeyStore
        from salesrail.clock import system_clock
        from salesrail.db.database import Database

        db = Database(_sqlalchemy_url(self.auth_database_dsn))
        try:
            store = ApiKeyStore(db, clock=system_clock)
            await store.migrate()
            rep = await store.create(role=Role.REP, rep_id=REP, name="bench-rep")
            ops = await store.create(role=Role.OPS, name="bench-ops")
        finally:
            await db.dispose()
        return {"X-API-Key": rep}, {"X-API-Key": ops}

    # --- checks ----------------------------------------------------------------------------

    def scalar(self, sql: str) -> Any:
        async def fetch() -> Any:
            conn = await asyncpg.connect(self.database_dsn)
            try:
                return await conn.fetchval(sql)
            finally:
                await conn.close()

        return asyncio.run(fetch())

    def wait_drained(self, timeout: float = 30.0) -> int:
        """Wait until the outbox has nothing unsent (the relay caught up); the unsent count."""
        deadline = time.monotonic() + timeout
        unsent = -1
        while time.monotonic() < deadline:
            unsent = int(self.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
            if unsent == 0:
                return 0
            time.sleep(0.3)
        return unsent

    def stream_messages(self, stream: str = "SALESRAIL_ACTIVITY") -> tuple[int, dict[str, int]]:
        return asyncio.run(stream_counts(self.nats.url, stream))

    def log_problems(self) -> dict[str, int]:
        """Warning-or-worse lines of the service log, counted by event."""
        events: dict[str, int] = {}
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return {}
        for line in lines:
            try:
                record = json.loads(line)
                level, event = str(record.get("level", "")).lower(), str(record.get("event"))
            except (ValueError, AttributeError):
                level, event = "raw", line[:80]
            if level in ("warning", "error", "critical", "exception", "raw"):
                events[f"{level} {event[:80]}"] = events.get(f"{level} {event[:80]}", 0) + 1
        return events


def _sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
