"""A served app's start-up objects are kept out of later garbage collections, which come
less often."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from salesrail.serve import YOUNG_COLLECTION_THRESHOLD, _settling_heap_after_start


async def test_what_start_up_built_is_frozen_once_the_lifespan_has_started() -> None:
    seen: dict[str, int] = {}
    thresholds = gc.get_threshold()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        seen["frozen_during_start"] = gc.get_freeze_count()
        yield

    app = _settling_heap_after_start(FastAPI(lifespan=lifespan))
    try:
        async with app.router.lifespan_context(app):
            seen["frozen_once_started"] = gc.get_freeze_count()
            seen["young_threshold"] = gc.get_threshold()[0]
    finally:  # the rest of the test session collects as usual
        gc.unfreeze()
        gc.set_threshold(*thresholds)

    assert seen["frozen_during_start"] == 0
    assert seen["frozen_once_started"] > 10_000  # the interpreter, FastAPI, this test's app
    assert seen["young_threshold"] == YOUNG_COLLECTION_THRESHOLD > thresholds[0]
