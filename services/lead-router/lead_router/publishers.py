"""The events lead-router publishes, built from its records."""

from lead_router.models import AnyLead, Lead
from lead_router.rules import mask_phone
from salesrail.events.catalog import (
    EventData,
    LeadClaimed,
    LeadDuplicateDetected,
    LeadPooled,
    LeadReassigned,
    LeadReceived,
    LeadRescored,
    LeadRouted,
    NotifyRequested,
    Recipient,
)

# What lead-router puts on the bus (its AsyncAPI document lists these).
PUBLISHES: tuple[type[EventData], ...] = (
    LeadReceived,
    LeadRouted,
    LeadPooled,
    LeadClaimed,
    LeadReassigned,
    LeadDuplicateDetected,
    LeadRescored,
    NotifyRequested,
)


def lead_received(lead: AnyLead) -> LeadReceived:
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


def lead_routed(lead: AnyLead, *, previous_owner_id: str | None = None) -> LeadRouted:
    assert lead.owner_id is not None
    return LeadRouted(
        lead_id=lead.id,
        owner_id=lead.owner_id,
        rule=lead.route,
        team_id=lead.team_id,
        previous_owner_id=previous_owner_id,
    )


def lead_pooled(lead: AnyLead, *, reason: str, previous_owner_id: str | None = None) -> LeadPooled:
    return LeadPooled(lead_id=lead.id, reason=reason, previous_owner_id=previous_owner_id)


def lead_duplicate(
    lead: AnyLead, *, matched_on: str, similarity: float | None
) -> LeadDuplicateDetected:
    assert lead.duplicate_of is not None
    return LeadDuplicateDetected(
        lead_id=lead.id,
        duplicate_of=lead.duplicate_of,
        owner_id=lead.owner_id,
        matched_on=matched_on,
        similarity=similarity,
    )


def lead_rescored(lead: AnyLead, *, previous: tuple[int | None, str | None]) -> LeadRescored:
    return LeadRescored(
        lead_id=lead.id,
        score=lead.score or 0,
        grade=lead.grade or "C",
        previous_score=previous[0],
        previous_grade=previous[1],
        reasons=[reason["reason"] for reason in lead.score_reasons],
    )


def _summary(lead: AnyLead) -> str:
    grade = f"，评级 {lead.grade}（{lead.score} 分）" if lead.grade else ""
    return (
        f"{lead.company_name}（{lead.city_name or lead.city}，{lead.category}）"
        f"联系人 {lead.contact_name} {mask_phone(lead.phone)}{grade}"
    )


def tell_owner(lead: AnyLead, *, title: str) -> NotifyRequested:
    """A message to the lead's owner (their channels) about this lead."""
    assert lead.owner_id is not None
    return NotifyRequested(
        recipients=[Recipient(kind="rep", id=lead.owner_id)],
        title=title,
        text=_summary(lead),
        lead_id=lead.id,
    )


def tell_previous_owner(lead: Lead, owner_id: str, *, title: str, reason: str) -> NotifyRequested:
    return NotifyRequested(
        recipients=[
            Recipient(kind="rep", id=owner_id),
            Recipient(kind="supervisor_of", id=owner_id),
        ],
        title=title,
        text=f"{_summary(lead)}；原因：{reason}",
        lead_id=lead.id,
        severity="warning",
    )
