"""Wiring a service: its `create_app` factory and its process entry point, from its parts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from fastapi import APIRouter, FastAPI

from salesrail.clock import Clock, system_clock
from salesrail.events.catalog import EventData
from salesrail.http.app import create_service_app
from salesrail.runtime import Consumers, ServiceLifespan
from salesrail.serve import serve, serve_workers
from salesrail.settings import ServiceSettings

AppFactory = Callable[..., FastAPI]


def entrypoints(
    settings_class: type[ServiceSettings],
    *,
    title: str,
    description: str,
    migrations: Path,
    routers: Sequence[APIRouter],
    consumers: Consumers,
    publishes: Sequence[type[EventData]],
    lifespan: ServiceLifespan | None = None,
) -> tuple[AppFactory, Callable[[], None]]:
    """`create_app(settings=None, *, clock=...)` for tests and `main()` for the process."""

    def create_app(
        settings: ServiceSettings | None = None, *, clock: Clock = system_clock
    ) -> FastAPI:
        return create_service_app(
            settings or settings_class(),
            title=title,
            description=description,
            migrations=migrations,
            routers=routers,
            consumers=consumers,
            publishes=publishes,
            clock=clock,
            lifespan=lifespan,
        )

    def main() -> None:
        settings = settings_class()
        if settings.workers > 1:
            serve_workers(f"{settings.module_name}.main", settings)
        else:
            serve(create_app(settings), settings)

    return create_app, main
