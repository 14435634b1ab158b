"""The events lead-router publishes, built from its records."""

from lead_router.models import Lead
from salesrail.events.catalog import EventData, LeadReceived

# What lead-router puts on the bus (its AsyncAPI document lists these).
PUBLISHES: tuple[type[EventData], ...] = (LeadReceived,)


def lead_received(lead: Lead) -> LeadReceived:
    return LeadReceived(
        lead_id=lead.id,
        source=lead.source,
        external_id=lead.external_id,
        company_name=lead.company_name,
        contact_name=lead.contact_name,
        phone=lead.phone,
        city=lead.city,
        category=lead.category,
        received_at=lead.received_at,
        budget=lead.budget,
        purchase_timeframe=lead.purchase_timeframe,
        tags=lead.tags,
    )
