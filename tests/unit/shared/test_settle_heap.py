"""A served app's start-up objects are kept out of later garbage collections."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from salesrail.serve import _settling_heap_after_start


async def test_what_start_up_built_is_frozen_once_the_lifespan_has_started() -> None:
    seen: dict[str, int] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        seen["frozen_during_start"] = gc.get_freeze_count()
        yield

    app = _settling_heap_after_start(FastAPI(lifespan=lifespan))
    try:
        async with app.router.lifespan_context(app):
            seen["frozen_once_started"] = gc.get_freeze_count()
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual

    assert seen["frozen_during_start"] == 0
    assert seen["frozen_once_started"] > 10_000  # the interpreter, FastAPI, this test's app
