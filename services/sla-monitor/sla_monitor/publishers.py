"""The events sla-monitor publishes, built from its records.

None yet: `sla.warning.<rule>` and `sla.alert.<rule>` come with the sweep that fires clocks.
"""

from salesrail.events.catalog import EventData

PUBLISHES: tuple[type[EventData], ...] = ()
