"""Wiring of collab: its settings, HTTP routes, bus subscribers and published events."""

from pathlib import Path

from collab import api, publishers, subscribers
from collab.config import Settings
from salesrail.service import entrypoints

create_app, main = entrypoints(
    Settings,
    title="Salesrail collab",
    description="Collaboration tickets between sales, presales, finance and after-sales.",
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    consumers=subscribers.CONSUMERS,
    publishes=publishers.PUBLISHES,
)
