"""One Salesrail service as a real process on its own NATS and PostgreSQL, for the benchmarks.

    class IntakeStack(ServiceStack):
        service, module, env_prefix = "lead-router", "lead_router", "SALESRAIL_LEAD_ROUTER_"

        def api_keys(self) -> dict[str, KeySpec]:
            return {"submitter": KeySpec("integration", "bench-intake"), **super().api_keys()}

    with IntakeStack("intake") as stack:    # nats-server, 2 fresh databases, the service
        run_load(stack.url("/v1/leads"), headers=stack.keys["submitter"], ...)

Everything started here is ours alone and is stopped on leaving the block: the nats-server
(a free port, a temporary directory), the two uniquely named databases ``bench_<label>_<run>``
and ``..._auth`` (dropped WITH FORCE), and the service process (``python -m <module>``;
SIGTERM, then SIGKILL). The temporary directory (service log, NATS store, data dir) is removed
unless ``BENCH_KEEP_TMP`` is set. PostgreSQL is ``BENCH_POSTGRES_DSN`` or
``postgres@127.0.0.1:5432``.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import asyncpg
import httpx

from bench import REPO_ROOT
from bench.servers import ServerProcess, free_port, start_process

POSTGRES_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

#: Log levels ``log_events`` counts ("raw": a line that is not JSON).
PROBLEM_LEVELS = ("warning", "error", "critical", "exception", "raw")


@dataclass(frozen=True)
class KeySpec:
    """An API key to create in the auth database: ``role`` is a ``salesrail.auth.Role`` value."""

    role: str
    name: str
    rep_id: str | None = None


class ServiceStack:
    """nats-server + two fresh PostgreSQL databases + one service (`workers` processes).

    A subclass names the service (``service``: log file, messages, description), the module
    run with ``python -m`` (``module``) and its settings' prefix (``env_prefix``, for
    ``<prefix>PORT`` and ``<prefix>HOST``); it may override ``api_keys()``.
    """

    service: ClassVar[str]
    module: ClassVar[str]
    env_prefix: ClassVar[str]

    database_dsn: str
    auth_database_dsn: str
    log_path: Path

    def __init__(
        self, label: str, *, extra_env: dict[str, str] | None = None, workers: int = 1
    ) -> None:
        self.label = label
        self.run_id = uuid.uuid4().hex[:8]
        self.extra_env = extra_env or {}
        self.workers = workers
        self.tmp: Path | None = None
        self.nats: Any = None
        self.server: ServerProcess | None = None
        self.databases: list[str] = []
        #: ``{"X-API-Key": key}`` per name of ``api_keys()``, once started.
        self.keys: dict[str, dict[str, str]] = {}

    # --- hooks -----------------------------------------------------------------------------

    def api_keys(self) -> dict[str, KeySpec]:
        """The API keys to create (in this order), by the name they get in ``keys``."""
        return {"ops": KeySpec("ops", "bench-ops")}

    @property
    def ops(self) -> dict[str, str]:
        return self.keys.get("ops", {})

    # --- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> Self:
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
        self.keys = asyncio.run(self._create_keys())
        port = free_port()
        self.log_path = self.tmp / f"{self.service}.log"
        env = {
            "SALESRAIL_NATS_URL": self.nats.url,
            "SALESRAIL_DATABASE_URL": _sqlalchemy_url(self.database_dsn),
            "SALESRAIL_AUTH_DATABASE_URL": _sqlalchemy_url(self.auth_database_dsn),
            "SALESRAIL_DATA_DIR": str(self.tmp / "data"),
            f"{self.env_prefix}PORT": str(port),
            f"{self.env_prefix}HOST": "127.0.0.1",
            "SALESRAIL_LOG_LEVEL": "WARNING",
            "SALESRAIL_LOG_JSON": "true",
            "SALESRAIL_SHUTDOWN_GRACE_S": "5",
            f"{self.env_prefix}WORKERS": str(self.workers),
            **self.extra_env,
        }
        self.server = start_process(
            [sys.executable, "-m", self.module],
            port,
            env=env,
            cwd=REPO_ROOT,
            ready_path="/healthz",
            timeout=60,
            description=f"{self.service} ({self.workers} uvicorn worker"
            + ("s)" if self.workers > 1 else ")"),
            log_path=self.log_path,
        )
        self._wait_ready()

    def close(self) -> None:
        """Stop the service and nats-server, drop the databases, remove the temporary
        directory; each step runs even when an earlier one failed (the first error is raised)."""
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

    # --- the service -----------------------------------------------------------------------

    def url(self, path: str) -> str:
        assert self.server is not None
        return self.server.url(path)

    @property
    def nats_url(self) -> str:
        return self.nats.url

    def _wait_ready(self, timeout: float = 60.0) -> None:
        assert self.server is not None
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.server.proc.poll() is not None:
                raise RuntimeError(f"{self.service} exited:\n{self.server.log_tail()}")
            try:
                answer = httpx.get(self.url("/readyz"), timeout=2)
                if answer.status_code == 200:
                    return
                last = answer.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise TimeoutError(
            f"{self.service} not ready in {timeout:.0f}s: {last}\n{self.server.log_tail()}"
        )

    # --- databases and keys ----------------------------------------------------------------

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

    async def _create_keys(self) -> dict[str, dict[str, str]]:
        from salesrail.auth import Role
        from salesrail.auth.api_keys import ApiKeyStore
        from salesrail.clock import system_clock
        from salesrail.db.database import Database

        keys: dict[str, dict[str, str]] = {}
        db = Database(_sqlalchemy_url(self.auth_database_dsn))
        try:
            store = ApiKeyStore(db, clock=system_clock)
            await store.migrate()
            for key, spec in self.api_keys().items():
                role = Role(spec.role)
                secret = await store.create(role=role, rep_id=spec.rep_id, name=spec.name)
                keys[key] = {"X-API-Key": secret}
        finally:
            await db.dispose()
        return keys

    # --- checks ----------------------------------------------------------------------------

    def scalar(self, sql: str) -> Any:
        """One value from the service database."""

        async def fetch() -> Any:
            conn = await asyncpg.connect(self.database_dsn)
            try:
                return await conn.fetchval(sql)
            finally:
                await conn.close()

        return asyncio.run(fetch())

    def log_events(self) -> dict[str, int]:
        """Lines of the service log at warning level or above (and any line not JSON),
        counted by ``"<level> <event>"``."""
        events: dict[str, int] = {}
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return {}
        for line in lines:
            try:
                record = json.loads(line)
                level = str(record.get("level", "")).lower()
                event = str(record.get("event", ""))[:80]
            except (ValueError, AttributeError):
                level, event = "raw", line[:80]
            if level in PROBLEM_LEVELS:
                key = f"{level} {event}"
                events[key] = events.get(key, 0) + 1
        return events


async def stream_counts(nats_url: str, stream: str) -> tuple[int, dict[str, int]]:
    """Messages in a stream, in all and per subject."""
    import nats

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream, subjects_filter=">")
        return int(info.state.messages), dict(info.state.subjects or {})
    finally:
        await nc.close()


def _sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
