"""/readyz reports a service's own checks (e.g. its scheduler) beside its bus and databases."""

from __future__ import annotations

from pathlib import Path

from collab.config import Settings
from collab.main import create_app
from tests.support.apps import running, runtime, service_app


async def test_a_failing_service_check_makes_the_service_not_ready(
    nats_url: str, tmp_path: Path
) -> None:
    app = service_app(
        create_app,
        Settings,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
        auth_database_url=f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}",
        nats_url=nats_url,
        data_dir=tmp_path,
    )
    health = {"scheduler": True}

    async def scheduler_alive() -> bool:
        return health["scheduler"]

    async def broken() -> bool:
        raise RuntimeError("cannot tell")

    async with running(app) as client:
        runtime(app).extra_checks["scheduler"] = scheduler_alive
        ready = await client.get("/readyz")
        health["scheduler"] = False
        stalled = await client.get("/readyz")
        runtime(app).extra_checks["scheduler"] = broken
        unknown = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["scheduler"] == "ok"
    assert stalled.status_code == 503 and stalled.json()["checks"]["scheduler"] == "failing"
    assert unknown.status_code == 503
    assert unknown.json()["checks"]["scheduler"] == "failing: RuntimeError"
