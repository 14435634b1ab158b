"""Wiring of activity: its settings, HTTP routes, bus subscribers and published events."""

from pathlib import Path

from activity import api, publishers, subscribers
from activity.attachments import api as attachments_api
from activity.config import Settings
from salesrail.service import entrypoints

create_app, main = entrypoints(
    Settings,
    title="Salesrail activity",
    description="Activities, attachments, opportunity stages and stage gates.",
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router, attachments_api.router],
    consumers=subscribers.CONSUMERS,
    publishes=publishers.PUBLISHES,
)
