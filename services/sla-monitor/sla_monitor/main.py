"""Wiring of sla-monitor: its settings, HTTP routes, bus subscribers and published events."""

from pathlib import Path

from salesrail.service import entrypoints
from sla_monitor import api, publishers, subscribers
from sla_monitor.config import Settings

create_app, main = entrypoints(
    Settings,
    title="Salesrail sla-monitor",
    description="SLA clocks kept in the database: policies, deadlines, alerts, escalations.",
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    consumers=subscribers.CONSUMERS,
    publishes=publishers.PUBLISHES,
)
