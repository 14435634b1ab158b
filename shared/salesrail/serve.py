"""Run a service as a process: logs configured, uvicorn serving, SIGTERM drains cleanly."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from salesrail.logging import configure_logging
from salesrail.settings import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    configure_logging(service=settings.service_name, level=settings.log_level, json=settings.log_json)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        server_header=False,
    )
    # uvicorn turns SIGTERM/SIGINT into a graceful shutdown, which runs the app's lifespan exit.
    uvicorn.Server(config).run()
