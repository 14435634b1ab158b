"""The events metrics publishes, built from its records."""

from salesrail.events.catalog import EventData

# metrics only reads the bus; its numbers are served over HTTP.
PUBLISHES: tuple[type[EventData], ...] = ()
