"""Bus handlers of collab (none yet: tickets are opened over HTTP; SLA alerts come later)."""

from salesrail.bus.consumer import EventConsumer

CONSUMERS: tuple[EventConsumer, ...] = ()
