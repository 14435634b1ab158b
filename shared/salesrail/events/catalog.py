"""Typed payloads per subject. Consumers ignore fields they don't know; producers may add."""

from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class EventData(BaseModel):
    """Base of every event payload; `event_type` is its subject without `salesrail.`."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    event_type: ClassVar[str]


# --- leads (lead-router) ------------------------------------------------------------------


class LeadReceived(EventData):
    event_type: ClassVar[str] = "lead.received"
    lead_id: str
    source: str
    external_id: str | None = None
    company_name: str
    contact_name: str | None = None
    phone: str | None = None
    city: str
    category: str
    received_at: AwareDatetime
    budget: float | None = None
    purchase_timeframe: str | None = None
    tags: list[str] = Field(default_factory=list)


class LeadRouted(EventData):
    event_type: ClassVar[str] = "lead.routed"
    lead_id: str
    owner_id: str
    rule: str
    team_id: str | None = None
    previous_owner_id: str | None = None


class LeadPooled(EventData):
    event_type: ClassVar[str] = "lead.pooled"
    lead_id: str
    reason: str
    previous_owner_id: str | None = None


class LeadClaimed(EventData):
    event_type: ClassVar[str] = "lead.claimed"
    lead_id: str
    owner_id: str
    team_id: str | None = None  # the new owner's team (its supervisor may act on the lead)


class LeadReassigned(EventData):
    event_type: ClassVar[str] = "lead.reassigned"
    lead_id: str
    owner_id: str
    previous_owner_id: str | None = None
    reason: str
    by: str
    team_id: str | None = None  # the new owner's team


class LeadDuplicateDetected(EventData):
    """The same customer arrived again: linked to the existing lead, never to a second rep."""

    event_type: ClassVar[str] = "lead.duplicate_detected"
    lead_id: str
    duplicate_of: str
    owner_id: str | None = None
    matched_on: str  # "phone" or "company_name"
    similarity: float | None = None


class LeadRescored(EventData):
    """Late enrichment facts changed a lead's score or grade."""

    event_type: ClassVar[str] = "lead.rescored"
    lead_id: str
    score: int
    grade: str
    previous_score: int | None = None
    previous_grade: str | None = None
    reasons: list[str] = Field(default_factory=list)


class LeadStageChanged(EventData):
    event_type: ClassVar[str] = "lead.stage_changed"
    lead_id: str
    from_stage: str | None = Field(default=None, alias="from")
    to_stage: str = Field(alias="to")
    by: str | None = None
    reason: str | None = None
    overridden: bool = False  # a supervisor passed a gate that was not met
    occurred_at: AwareDatetime | None = None


# --- activity -----------------------------------------------------------------------------


class ActivityLogged(EventData):
    """Any activity on a lead; what sla-monitor and metrics need to judge its progress."""

    event_type: ClassVar[str] = "activity.logged"
    activity_id: str
    lead_id: str
    rep_id: str
    type: str
    occurred_at: AwareDatetime
    logged_at: AwareDatetime | None = None
    on_time: bool | None = None  # visits: logged within the allowed delay after occurred_at
    # Facts extracted from the memo (decision_maker, budget_min/max, next_step) and the
    # names of those not found.
    facts: dict[str, Any] = Field(default_factory=dict)
    missing_facts: list[str] = Field(default_factory=list)
    # The lead after this activity: its stage, how many distinct key people its activities
    # have covered, and the share (0..1) of the next stage's gate checks already met.
    stage: str | None = None
    key_people_covered: int | None = None
    proposal_completion: float | None = None
    first_contact: bool = False  # this rep's first activity on this lead
    tech_env_change: bool = False


class StageGateOverridden(EventData):
    """A supervisor moved a lead past a gate it did not pass; the missing items are kept."""

    event_type: ClassVar[str] = "activity.gate_overridden"
    lead_id: str
    from_stage: str | None = None
    to_stage: str
    missing: list[str] = Field(default_factory=list)
    reason: str
    by: str


class TechEnvChanged(EventData):
    """A customer's technical environment changes: presales and after-sales must hear of it."""

    event_type: ClassVar[str] = "activity.tech_env_changed"
    lead_id: str
    activity_id: str
    rep_id: str
    occurred_at: AwareDatetime
    summary: str
    matched_phrases: list[str] = Field(default_factory=list)


# --- collaboration tickets ----------------------------------------------------------------


class _TicketEvent(EventData):
    ticket_id: str
    lead_id: str | None = None
    kind: str
    requested_by: str | None = None
    assignee_role: str | None = None
    assignee_id: str | None = None


class TicketOpened(_TicketEvent):
    event_type: ClassVar[str] = "collab.ticket.opened"


class TicketAccepted(_TicketEvent):
    event_type: ClassVar[str] = "collab.ticket.accepted"


class TicketDelivered(_TicketEvent):
    event_type: ClassVar[str] = "collab.ticket.delivered"


class TicketClosed(_TicketEvent):
    event_type: ClassVar[str] = "collab.ticket.closed"


# --- notifications -----------------------------------------------------------------------


class Recipient(BaseModel):
    """Who is told: a rep, a team, a rep's supervisor, or everyone holding a role."""

    model_config = ConfigDict(extra="ignore")
    kind: str  # "rep" | "team" | "supervisor_of" | "role"
    id: str


class NotifyRequested(EventData):
    """Tell people something through their configured channels (WeCom, DingTalk, ...)."""

    event_type: ClassVar[str] = "notify.requested"
    recipients: list[Recipient]
    title: str
    text: str
    severity: str = "info"
    lead_id: str | None = None
    link: str | None = None


class NotifyDelivery(EventData):
    """One message for one channel; the channel is named, its URL and secret stay in the DB."""

    event_type: ClassVar[str] = "notify.delivery"
    request_id: str  # the notify.requested event it comes from
    owner_kind: str  # "rep" | "team"
    owner_id: str
    channel_id: str
    title: str
    text: str
    severity: str = "info"
    link: str | None = None
    lead_id: str | None = None


# --- SLA clocks ---------------------------------------------------------------------------


class _SlaSignal(EventData):
    rule: str
    lead_id: str | None = None
    ticket_id: str | None = None
    owner_id: str | None = None
    due_at: datetime
    fired_at: datetime
    notify: list[str] = Field(default_factory=list)
    severity: str
    # Which clock fired: `alert_id` is stable per (rule, entity, cycle, step) and is what
    # POST /v1/alerts/{id}/ack and sla.alert_retracted refer to.
    alert_id: str | None = None
    entity_type: str | None = None  # "lead" | "ticket" | "rep"
    entity_id: str | None = None
    cycle: int | None = None
    policy_version: int | None = None


class SlaWarning(_SlaSignal):
    """A clock passed its warning point (e.g. a ticket's first draft is due)."""

    event_type: ClassVar[str] = "sla.warning.*"


class SlaAlert(_SlaSignal):
    """A clock ran out; fired once per (rule, entity, cycle)."""

    event_type: ClassVar[str] = "sla.alert.*"


class SlaEscalated(_SlaSignal):
    """A breach still unanswered after the policy's further delay: told to the next people."""

    event_type: ClassVar[str] = "sla.escalation.*"
    level: int = 1
    breach_alert_id: str | None = None


class SlaAlertRetracted(EventData):
    """An alert (or warning, or escalation) that fired only because the event that answered
    the clock in time arrived late: disregard it."""

    event_type: ClassVar[str] = "sla.alert_retracted"
    alert_id: str
    rule: str
    kind: str  # "warning" | "alert" | "escalation_<n>"
    lead_id: str | None = None
    ticket_id: str | None = None
    owner_id: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    cycle: int | None = None
    answered_at: datetime  # when the answering event happened (before the deadline)
    retracted_at: datetime


class SlaFollowUpRequested(EventData):
    """A red warning unresolved after its delay: a follow-up ticket for an ops group."""

    event_type: ClassVar[str] = "sla.followup_requested"
    alert_id: str
    breach_alert_id: str | None = None
    rule: str
    group: str  # e.g. "regional_ops_support"
    lead_id: str | None = None
    owner_id: str | None = None
    reason: str
    requested_at: datetime


class SlaAlertAcknowledged(EventData):
    """Someone acknowledged an alert; unacknowledged-escalations of it no longer fire."""

    event_type: ClassVar[str] = "sla.alert_acknowledged"
    alert_id: str
    rule: str
    lead_id: str | None = None
    ticket_id: str | None = None
    owner_id: str | None = None
    by: str
    acknowledged_at: datetime


_CATALOG: tuple[type[EventData], ...] = (
    LeadReceived,
    LeadRouted,
    LeadPooled,
    LeadClaimed,
    LeadReassigned,
    LeadStageChanged,
    LeadDuplicateDetected,
    LeadRescored,
    ActivityLogged,
    StageGateOverridden,
    TechEnvChanged,
    TicketOpened,
    TicketAccepted,
    TicketDelivered,
    TicketClosed,
    SlaWarning,
    SlaAlert,
    SlaEscalated,
    SlaAlertRetracted,
    SlaFollowUpRequested,
    SlaAlertAcknowledged,
    NotifyRequested,
    NotifyDelivery,
)


def event_types() -> tuple[type[EventData], ...]:
    return _CATALOG


def data_model_for(event_type: str) -> type[EventData] | None:
    """The payload model of an event type (`sla.alert.first_touch_48h` -> SlaAlert)."""
    for model in _CATALOG:
        if fnmatch.fnmatchcase(event_type, model.event_type):
            return model
    return None
