"""Wiring of lead-router: its settings, HTTP routes, bus subscribers and published events."""

from pathlib import Path

from lead_router import api, publishers, subscribers
from lead_router.config import Settings
from lead_router.context import lead_router_context
from salesrail.service import entrypoints

create_app, main = entrypoints(
    Settings,
    title="Salesrail lead-router",
    description="Lead intake, enrichment, scoring, routing rules and the public pool.",
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    consumers=subscribers.consumers,
    publishes=publishers.PUBLISHES,
    lifespan=lead_router_context,
)
