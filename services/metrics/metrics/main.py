"""Wiring: settings, runtime, HTTP routes and bus subscribers of metrics."""

from pathlib import Path

from fastapi import FastAPI

from metrics import api, publishers, subscribers
from metrics.config import Settings
from salesrail.clock import Clock, system_clock
from salesrail.http.app import create_service_app
from salesrail.serve import serve

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: Settings | None = None, *, clock: Clock = system_clock) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="Salesrail metrics",
        description="KPIs, funnels and role dashboards, computed from the cluster's events.",
        migrations=MIGRATIONS,
        routers=[api.router],
        consumers=subscribers.CONSUMERS,
        publishes=publishers.PUBLISHES,
        clock=clock,
    )


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)
