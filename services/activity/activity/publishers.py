"""The events activity publishes, built from its records."""

from __future__ import annotations

from typing import Any

from activity.models import StageChange
from salesrail.events.catalog import (
    ActivityLogged,
    EventData,
    LeadStageChanged,
    StageGateOverridden,
    TechEnvChanged,
)
from salesrail.logging import mask_phone_numbers

# What activity puts on the bus (its AsyncAPI document lists these).
PUBLISHES: tuple[type[EventData], ...] = (
    ActivityLogged,
    LeadStageChanged,
    StageGateOverridden,
    TechEnvChanged,
)
_SUMMARY_CHARS = 300


def activity_logged(
    row: dict[str, Any],
    *,
    stage: str,
    key_people_covered: int,
    proposal_completion: float | None,
    first_contact: bool,
) -> ActivityLogged:
    return ActivityLogged(
        activity_id=row["activity_id"],
        lead_id=row["lead_id"],
        rep_id=row["rep_id"],
        type=row["type"],
        occurred_at=row["occurred_at"],
        logged_at=row["logged_at"],
        on_time=row["on_time"],
        facts=row["facts"],
        missing_facts=row["missing_facts"],
        stage=stage,
        key_people_covered=key_people_covered,
        proposal_completion=proposal_completion,
        first_contact=first_contact,
        tech_env_change=row["tech_env_change"],
    )


def tech_env_changed(row: dict[str, Any], *, matched_phrases: list[str]) -> TechEnvChanged:
    """For presales and after-sales: what changed, without the memo's phone numbers."""
    text = row["summary"] or row["transcript"] or row["type"]
    return TechEnvChanged(
        lead_id=row["lead_id"],
        activity_id=row["activity_id"],
        rep_id=row["rep_id"],
        occurred_at=row["occurred_at"],
        summary=mask_phone_numbers(text[:_SUMMARY_CHARS]),
        matched_phrases=matched_phrases,
    )


def stage_changed(change: StageChange) -> LeadStageChanged:
    return LeadStageChanged(
        lead_id=change.lead_id,
        from_stage=change.from_stage,
        to_stage=change.to_stage,
        by=change.by,
        reason=change.reason,
        overridden=change.overridden,
        occurred_at=change.occurred_at,
    )


def gate_overridden(change: StageChange, *, missing: list[str]) -> StageGateOverridden:
    assert change.reason is not None  # an override always carries its reason
    return StageGateOverridden(
        lead_id=change.lead_id,
        from_stage=change.from_stage,
        to_stage=change.to_stage,
        missing=missing,
        reason=change.reason,
        by=change.by,
    )
