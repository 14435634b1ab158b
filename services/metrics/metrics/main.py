"""Wiring of metrics: its settings, HTTP routes, bus subscribers and published events."""

from pathlib import Path

from metrics import api, publishers, subscribers
from metrics.config import Settings
from salesrail.service import entrypoints

create_app, main = entrypoints(
    Settings,
    title="Salesrail metrics",
    description="KPIs, funnels and role dashboards, computed from the cluster's events.",
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    consumers=subscribers.CONSUMERS,
    publishes=publishers.PUBLISHES,
)
