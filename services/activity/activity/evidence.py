"""What an activity shows: the facts its rules read, and what is flagged without refusing. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from activity.attachments.photo_metadata import is_far_from
from activity.models import Attachment
from activity.party_match import PartyMatch
from activity.requirements import CHECKLIST_PREFIX
from activity.schemas import ActivityIn


def activity_facts(
    body: ActivityIn,
    attachments: Sequence[Attachment],
    *,
    memo_facts: Mapping[str, Any],
    party: PartyMatch | None,
) -> dict[str, Any]:
    """The facts of activity_requirements.yaml (see requirements.ACTIVITY_FACTS)."""
    kinds = [a.kind for a in attachments]
    facts: dict[str, Any] = {
        "photos": kinds.count("image"),
        "audio": kinds.count("audio"),
        "pdfs": kinds.count("pdf"),
        "documents": kinds.count("pdf") + kinds.count("image"),
        "attachments": len(attachments),
        "contacts": len(body.contacts),
        "transcript": body.transcript,
        "summary": body.summary,
        "minutes": body.minutes,
        "party_name": body.party_name,
        "decision_maker": body.decision_maker or memo_facts.get("decision_maker"),
        "party_match": None if party is None else ("match" if party.matched else "mismatch"),
        "tech_env_change": body.tech_env_change,
    }
    facts.update({f"{CHECKLIST_PREFIX}{k}": v for k, v in body.checklist.items()})
    return facts


def flags(
    *,
    occurred_at: datetime,
    on_time: bool | None,
    late_after: timedelta | None,
    logged_at: datetime,
    attachments: Sequence[Attachment],
    photo_tolerance: timedelta,
    missing_facts: Sequence[str],
) -> list[dict[str, Any]]:
    """What the checks noticed but do not refuse for."""
    found: list[dict[str, Any]] = []
    if on_time is False and late_after is not None:
        hours = (logged_at - occurred_at).total_seconds() / 3600
        allowed = late_after.total_seconds() / 3600
        found.append(
            {
                "code": "late",
                "message": f"logged {hours:.1f} h after it happened (allowed {allowed:g} h)",
            }
        )
    for attachment in attachments:
        if attachment.kind == "image" and is_far_from(
            attachment.taken_at, occurred_at, photo_tolerance
        ):
            assert attachment.taken_at is not None
            gap = abs(attachment.taken_at - occurred_at).total_seconds() / 3600
            found.append(
                {
                    "code": "photo_far_from_activity",
                    "message": f"photo taken {gap:.1f} h away from the activity",
                    "attachment_id": attachment.attachment_id,
                }
            )
    if missing_facts:
        found.append(
            {
                "code": "missing_memo_facts",
                "message": f"the memo does not say: {', '.join(missing_facts)}",
            }
        )
    return found
