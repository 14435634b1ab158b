"""Wiring: settings, runtime, HTTP routes and bus subscribers of sla-monitor."""

from pathlib import Path

from fastapi import FastAPI

from salesrail.clock import Clock, system_clock
from salesrail.http.app import create_service_app
from salesrail.serve import serve
from sla_monitor import api, publishers, subscribers
from sla_monitor.config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: Settings | None = None, *, clock: Clock = system_clock) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="Salesrail sla-monitor",
        description="SLA clocks kept in the database: policies, deadlines, alerts, escalations.",
        migrations=MIGRATIONS,
        routers=[api.router],
        consumers=subscribers.CONSUMERS,
        publishes=publishers.PUBLISHES,
        clock=clock,
    )


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)
