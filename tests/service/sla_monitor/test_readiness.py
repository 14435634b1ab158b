"""/readyz names the scheduler: 503 when its task died."""

from __future__ import annotations

import asyncio

from tests.support.apps import running, runtime


async def test_readyz_answers_503_naming_the_scheduler_when_its_task_died(app) -> None:  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["scheduler"] == "ok"
        task = runtime(app).context.scheduler._task
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["status"] == "not ready"
        assert down.json()["checks"]["scheduler"] == "failing"
        assert down.json()["checks"]["database"] == "ok"
