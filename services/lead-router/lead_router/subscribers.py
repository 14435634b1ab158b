"""Bus handlers of lead-router (none yet: the SLA alerts it acts on come with the pool)."""

from salesrail.bus.consumer import EventConsumer

CONSUMERS: tuple[EventConsumer, ...] = ()
