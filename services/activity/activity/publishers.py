"""The events activity publishes, built from its records."""

from salesrail.events.catalog import EventData

# What activity puts on the bus (its AsyncAPI document lists these). Nothing yet:
# `activity.logged` and `lead.stage_changed` come with activities and stage gates.
PUBLISHES: tuple[type[EventData], ...] = ()
