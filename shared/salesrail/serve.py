"""Run a service as a process: logs configured, uvicorn serving, SIGTERM drains cleanly."""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from salesrail.logging import configure_logging
from salesrail.settings import ServiceSettings

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # SIGTERM starts a graceful shutdown (the app's lifespan exit finishes in-flight
        # messages); a clean shutdown then exits 0 instead of re-raising the signal.
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# Which service module a worker process serves (`<package>.main`, with its `create_app`).
WORKER_APP_ENV = "SALESRAIL__WORKER_APP"


# Allocations (less deallocations) between two young-generation collections; CPython's 700
# made lead-router collect ~30 times a second under load, 3.5 % of its CPU; at 10 000 it is
# ~0.5 %, and the young objects of a few dozen requests are little to walk.
YOUNG_COLLECTION_THRESHOLD = 10_000


def settle_heap() -> None:
    """Keep what start-up built out of every later garbage collection, and collect less often.

    A started service holds some 400 k objects (rules, schemas, region data, the ORM's
    registries) that live as long as the process. Each full collection walked them all: a
    130-150 ms pause every few seconds under load, in the middle of requests. Frozen, the
    collector only looks at what requests create (a pause of ~10 ms at most)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


def _settling_heap_after_start(app: FastAPI) -> FastAPI:
    """`settle_heap` once the app's lifespan has started it (in each worker process)."""
    starting = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(lifespan_app: Any) -> AsyncIterator[Any]:
        async with starting(lifespan_app) as state:
            settle_heap()
            yield state

    app.router.lifespan_context = lifespan
    return app


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    configure_logging(
        service=settings.service_name, level=settings.log_level, json=settings.log_json
    )
    config = uvicorn.Config(
        _settling_heap_after_start(app),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        server_header=False,
    )
    _Server(config).run()


def serve_workers(app_module: str, settings: ServiceSettings) -> None:
    """Several worker processes on one port (uvicorn's supervisor restarts one that dies).

    SIGTERM to this process stops every worker gracefully, each draining like a single one.
    """
    configure_logging(
        service=settings.service_name, level=settings.log_level, json=settings.log_json
    )
    os.environ[WORKER_APP_ENV] = app_module
    uvicorn.run(
        "salesrail.serve:worker_app",
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        server_header=False,
    )


def worker_app() -> FastAPI:
    """The app of one worker process (called by uvicorn in each worker)."""
    module = importlib.import_module(os.environ[WORKER_APP_ENV])
    app: FastAPI = module.create_app()
    settings = app.state.runtime.settings
    configure_logging(
        service=settings.service_name, level=settings.log_level, json=settings.log_json
    )
    return _settling_heap_after_start(app)
