"""The events sla-monitor publishes; listed in its AsyncAPI document (/asyncapi.json)."""

from salesrail.events.catalog import (
    EventData,
    NotifyRequested,
    SlaAlert,
    SlaAlertAcknowledged,
    SlaAlertRetracted,
    SlaEscalated,
    SlaFollowUpRequested,
    SlaWarning,
)

PUBLISHES: tuple[type[EventData], ...] = (
    SlaWarning,
    SlaAlert,
    SlaEscalated,
    SlaAlertRetracted,
    SlaFollowUpRequested,
    SlaAlertAcknowledged,
    NotifyRequested,
)
