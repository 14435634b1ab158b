"""Fixtures for real servers. Unit tests of pure code use none of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.servers import PostgresDatabases, nats_server, postgres_server


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One NATS for the session (tests that need their own use `fresh_nats_url`)."""
    with nats_server(tmp_path_factory.mktemp("nats")) as url:
        yield url


@pytest.fixture
def fresh_nats_url(tmp_path: Path) -> Iterator[str]:
    """A NATS server of this test alone: no durable consumer or stream state from others."""
    with nats_server(tmp_path / "nats") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
async def postgres_databases(postgres_server_url: str) -> AsyncIterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_server_url)
    try:
        yield databases
    finally:
        await databases.drop_all()


@pytest.fixture
async def postgres_url(postgres_databases: PostgresDatabases) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for this test, dropped after it."""
    url = await postgres_databases.create("t")
    yield url
    await postgres_databases.drop(url)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_databases: PostgresDatabases
) -> AsyncIterator[str]:
    """Persistence tests run on both backends (a PostgreSQL database is dropped after it)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    url = await postgres_databases.create("p")
    yield url
    await postgres_databases.drop(url)


@pytest.fixture
def auth_database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
