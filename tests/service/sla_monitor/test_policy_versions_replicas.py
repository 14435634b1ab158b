"""Two replicas storing new policies at the same moment: both stored, as consecutive versions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from salesrail.auth.principal import Role
from salesrail.clock import FrozenClock
from tests.service.sla_monitor.conftest import sla_app
from tests.service.sla_monitor.test_policies_api import ONE_POLICY
from tests.support.apps import api_key, running


async def test_policies_put_on_two_replicas_at_once_are_both_stored(
    clock: FrozenClock,
    postgres_url: str,
    auth_database_url: str,
    fresh_nats_url: str,
    tmp_path: Path,
) -> None:
    first, second = (
        sla_app(
            clock,
            database_url=postgres_url,
            auth_database_url=auth_database_url,
            nats_url=fresh_nats_url,
            data_dir=tmp_path,
        )
        for _ in range(2)
    )
    async with running(first) as one, running(second) as two:
        ops = await api_key(first, Role.OPS)
        for _ in range(3):  # each round: both at once
            answers = await asyncio.gather(
                one.put("/v1/policies", json={"yaml": ONE_POLICY}, headers=ops),
                two.put("/v1/policies", json={"yaml": ONE_POLICY}, headers=ops),
            )
            assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        newest = await one.get("/v1/policies", headers=ops)
    assert newest.json()["version"] == 7  # the defaults, then six PUTs
