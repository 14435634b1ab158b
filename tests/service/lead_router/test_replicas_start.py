"""Replicas (or uvicorn workers) of lead-router starting at once, or beside a running one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from lead_router.config import Settings
from lead_router.main import create_app
from lead_router.rulebook import DEFAULTS
from salesrail.auth.principal import Role
from tests.support.apps import api_key, put_at_once, running, runtime
from tests.support.publishing import eventually

REPLICAS = 3


def replicas(
    n: int, postgres_url: str, auth_database_url: str, nats_url: str, data_dir: Path
) -> list[FastAPI]:
    settings = Settings(
        database_url=postgres_url,
        auth_database_url=auth_database_url,
        nats_url=nats_url,
        data_dir=data_dir,
    )
    return [create_app(settings) for _ in range(n)]


async def routing_rules(app: FastAPI) -> dict[str, Any]:
    """Start the replica, read the active routing rules through its API, stop it."""
    async with running(app) as client:
        answer = await client.get("/v1/rules/routing", headers=await api_key(app, Role.OPS))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_replicas_starting_at_once_on_a_fresh_database_all_come_up_with_the_defaults(
    postgres_url: str, auth_database_url: str, fresh_nats_url: str, tmp_path: Path
) -> None:
    apps = replicas(REPLICAS, postgres_url, auth_database_url, fresh_nats_url, tmp_path)
    # One failed start-up fails the group (and cancels the others).
    async with asyncio.timeout(120), asyncio.TaskGroup() as group:
        tasks = [group.create_task(routing_rules(app)) for app in apps]
    rules = [task.result() for task in tasks]
    # The shipped defaults were stored once, as version 1, whichever replica stored them.
    assert [(r["version"], r["created_by"]) for r in rules] == [(1, "defaults")] * REPLICAS


async def test_a_replica_starting_beside_a_running_one_comes_up(
    postgres_url: str, auth_database_url: str, fresh_nats_url: str, tmp_path: Path
) -> None:
    first, second = replicas(2, postgres_url, auth_database_url, fresh_nats_url, tmp_path)
    async with running(first):
        relay = runtime(first).relay
        assert relay is not None

        async def leading() -> bool:
            return relay.leading

        # Publishing the database's events, it holds the relay's lock for as long as it runs:
        # a replica starting now must not wait on that.
        assert await eventually(leading, bool)
        async with asyncio.timeout(60):
            rules = await routing_rules(second)
    assert (rules["version"], rules["created_by"]) == (1, "defaults")


async def test_rules_put_on_two_replicas_at_once_are_both_stored(
    postgres_url: str, auth_database_url: str, fresh_nats_url: str, tmp_path: Path
) -> None:
    first, second = replicas(2, postgres_url, auth_database_url, fresh_nats_url, tmp_path)
    source = (DEFAULTS / "routing.yaml").read_text(encoding="utf-8")
    async with running(first) as one, running(second) as two:
        ops = await api_key(first, Role.OPS)
        await put_at_once([one, two], "/v1/rules/routing", {"yaml": source}, ops)
        newest = await one.get("/v1/rules/routing", headers=ops)
    assert newest.json()["version"] == 7  # the defaults, then six PUTs
