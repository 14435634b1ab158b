"""Wiring of sla-monitor: its settings, HTTP routes, bus subscribers, scheduler and events."""

from pathlib import Path

from salesrail.service import entrypoints
from sla_monitor import api, publishers, subscribers
from sla_monitor.asyncapi_doc import DESCRIPTION, TITLE
from sla_monitor.config import Settings
from sla_monitor.context import lifespan

create_app, main = entrypoints(
    Settings,
    title=TITLE,
    description=DESCRIPTION,
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    consumers=subscribers.CONSUMERS,
    publishes=publishers.PUBLISHES,
    lifespan=lifespan,
)
