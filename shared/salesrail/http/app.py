"""The FastAPI app factory: every service gets the same operational surface."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from salesrail.asyncapi import asyncapi_document
from salesrail.auth.dependency import SECURITY_SCHEMES, authenticate
from salesrail.clock import Clock, system_clock
from salesrail.events.catalog import EventData
from salesrail.http.json_body import document_json_bodies
from salesrail.http.middleware import RequestContextMiddleware
from salesrail.http.problems import install_problem_handlers
from salesrail.runtime import Consumers, ServiceLifespan, ServiceRuntime
from salesrail.settings import ServiceSettings


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    migrations: Path,
    routers: Sequence[APIRouter] = (),
    consumers: Consumers = (),
    publishes: Sequence[type[EventData]] = (),
    clock: Clock = system_clock,
    lifespan: ServiceLifespan | None = None,
    version: str = "1.0.0",
) -> FastAPI:
    """A service's app: its runtime in the lifespan, `/v1/` routes that all require
    authentication, health, readiness, metrics and its AsyncAPI document."""
    runtime = ServiceRuntime(
        settings=settings,
        migrations=migrations,
        consumers=consumers,
        clock=clock,
        lifespan=lifespan,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    telemetry = settings.opentelemetry
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        telemetry={"tracing": telemetry, "metrics": telemetry, "logs": telemetry},
    )
    app.state.runtime = runtime
    app.state.auth = runtime.auth
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(_operations_router(runtime))
    app.include_router(_asyncapi_router(runtime, title, description, version, publishes))
    for router in routers:
        app.include_router(router, prefix="/v1", dependencies=[Depends(authenticate)])
    _document_by_hand(app, routers)
    return app


def _document_by_hand(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """What FastAPI cannot infer for the OpenAPI document: every `/v1/` operation takes an API
    key or a bearer JWT (`authenticate` reads the headers itself), and the models of the bodies
    that routes read themselves (`salesrail.http.json_body`)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        document_json_bodies(schema, routers)
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in schema.get("paths", {}).items():
            if path.startswith("/v1/"):
                for operation in operations.values():
                    operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operations_router(runtime: ServiceRuntime) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.settings.service_name}

    @router.get("/readyz", summary="Bus and database reachable (503 otherwise)")
    async def readyz() -> JSONResponse:
        checks = await runtime.readiness()
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def _asyncapi_router(
    runtime: ServiceRuntime,
    title: str,
    description: str,
    version: str,
    publishes: Sequence[type[EventData]],
) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/asyncapi.json", summary="AsyncAPI 3.0: the subjects consumed and published")
    async def asyncapi() -> JSONResponse:
        document = asyncapi_document(
            title=title,
            version=version,
            description=description,
            consumers=runtime.consumers,
            publishes=publishes,
        )
        return JSONResponse(document)

    return router


def runtime_of(request: Request) -> ServiceRuntime:
    return request.app.state.runtime
