"""Two replicas storing new policies at the same moment: both stored, as consecutive versions."""

from __future__ import annotations

from pathlib import Path

from salesrail.auth.principal import Role
from salesrail.clock import FrozenClock
from tests.service.sla_monitor.conftest import sla_app
from tests.service.sla_monitor.test_policies_api import ONE_POLICY
from tests.support.apps import api_key, put_at_once, running


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
        await put_at_once([one, two], "/v1/policies", {"yaml": ONE_POLICY}, ops)
        newest = await one.get("/v1/policies", headers=ops)
    assert newest.json()["version"] == 7  # the defaults, then six PUTs
