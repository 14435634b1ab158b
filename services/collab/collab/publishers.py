"""The events collab publishes, built from its records."""

from collab.models import Ticket
from salesrail.events.catalog import EventData, TicketOpened

# What collab puts on the bus (its AsyncAPI document lists these).
PUBLISHES: tuple[type[EventData], ...] = (TicketOpened,)


def ticket_opened(ticket: Ticket) -> TicketOpened:
    return TicketOpened(
        ticket_id=ticket.id,
        lead_id=ticket.lead_id,
        kind=ticket.kind,
        requested_by=ticket.requested_by,
        assignee_role=ticket.assignee_role,
    )
