"""Run a service in the test process: its real lifespan, an HTTP client on its app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from salesrail.auth.principal import Role
from salesrail.runtime import ServiceRuntime


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app (migrate, connect, consume), yield a client, stop it cleanly."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def runtime(app: FastAPI) -> ServiceRuntime:
    return app.state.runtime


async def api_key(
    app: FastAPI, role: Role = Role.ADMIN, rep_id: str | None = None
) -> dict[str, str]:
    """Headers carrying a fresh API key of that role, stored in the app's auth database."""
    key = await runtime(app).auth.api_keys.create(role=role, rep_id=rep_id, name=f"test-{role}")
    return {"X-API-Key": key}


def service_app(
    create_app: Callable[..., FastAPI],
    settings_cls: Callable[..., Any],
    *,
    database_url: str,
    auth_database_url: str,
    nats_url: str,
    data_dir: Any,
    **overrides: Any,
) -> FastAPI:
    """A service's app on the test's database, auth database and NATS."""
    return create_app(
        settings_cls(
            database_url=database_url,
            auth_database_url=auth_database_url,
            nats_url=nats_url,
            data_dir=data_dir,
            **overrides,
        )
    )


async def put_at_once(
    clients: Sequence[httpx.AsyncClient],
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    *,
    rounds: int = 3,
) -> None:
    """PUT `body` through every client at the same moment, `rounds` times; each must be 200
    (replicas storing a new version at once, say)."""
    for _ in range(rounds):
        answers = await asyncio.gather(
            *(client.put(path, json=body, headers=headers) for client in clients)
        )
        assert [a.status_code for a in answers] == [200] * len(clients), [a.text for a in answers]
