"""activity's tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from activity import rules
from salesrail.db.types import JsonDoc, UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData()


class Lead(Base):
    """activity's own view of a lead, kept from lead-router's events: who owns it, which stage.

    An owner change may arrive before the lead's announcement: the row then starts without
    company, city and category, and `lead.received` fills them in later.
    """

    __tablename__ = "leads"

    lead_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    company_name: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    owner_id: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(32), default=rules.INITIAL_STAGE)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The owner's team (its supervisor may act on the lead) and when the owner last changed
    # (an older owner event arriving late changes nothing).
    team_id: Mapped[str | None] = mapped_column(String(64))
    owner_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Bumped by every stage change: a change applies only to the version it was decided on.
    version: Mapped[int] = mapped_column(Integer, default=0)
    # What the lead's activities have delivered so far (see activity.dossier).
    dossier: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)


class Attachment(Base):
    """A file uploaded for a lead, stored once per content (sha256) on the content store."""

    __tablename__ = "attachments"

    attachment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(64), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # image | audio | pdf
    media_type: Mapped[str] = mapped_column(String(100))  # sniffed from the bytes
    size: Mapped[int] = mapped_column(BigInteger)
    original_name: Mapped[str | None] = mapped_column(String(255))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Photo metadata, where the file carries it (EXIF).
    taken_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    gps_lat: Mapped[float | None] = mapped_column(Float)
    gps_lon: Mapped[float | None] = mapped_column(Float)


# In Activity.record: the type-specific answers as sent (checklist, party name, minutes,
# contacts...), the attachment ids, the memo's facts and those it lacks, the people covered, and
# what the checks noticed without refusing ([{"code", "message", "attachment_id"?}]).
RECORD_FIELDS = ("details", "attachments", "facts", "missing_facts", "key_people", "flags")
# Also in Activity.record: what the activity made of its lead, as answered when it was logged
# ({"stage", "key_people_covered", "proposal_completion", "first_contact"}), so that a retry
# under the same Idempotency-Key is answered exactly as the first request was.
LEAD_AFTER = "lead_after"


class Activity(Base):
    """One accepted activity on a lead, with what was checked and found when it was logged."""

    __tablename__ = "activities"
    __table_args__ = (
        # The timeline reads a lead's activities newest first, a page after a cursor.
        Index("ix_activities_timeline", "lead_id", "occurred_at", "activity_id"),
        # An Idempotency-Key is its caller's own: one activity per (caller, key), whichever
        # batch or replica stores it first.
        UniqueConstraint("logged_by", "idempotency_key", name="uq_activities_idempotency_key"),
    )

    activity_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(64))
    rep_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    logged_at: Mapped[datetime] = mapped_column(UtcDateTime)
    logged_by: Mapped[str] = mapped_column(String(200))
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    summary: Mapped[str | None] = mapped_column(Text)
    transcript: Mapped[str | None] = mapped_column(Text)
    # What it carried and what its checks found, only ever read whole (RECORD_FIELDS): one
    # JSON document per row is one encode on insert and one decode on the timeline.
    record: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    tech_env_change: Mapped[bool] = mapped_column(Boolean, default=False)
    overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    # The caller's Idempotency-Key (scoped by logged_by, the caller's subject) and the SHA-256
    # of the canonical request it came with: the same key with another request is refused.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))


class StageChange(Base):
    """A lead moved from one stage to another: by whom, why, and whether a gate was passed over."""

    __tablename__ = "stage_changes"
    __table_args__ = (Index("ix_stage_changes_timeline", "lead_id", "occurred_at", "change_id"),)

    change_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(64))
    from_stage: Mapped[str] = mapped_column(String(32))
    to_stage: Mapped[str] = mapped_column(String(32))
    by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Override(Base):
    """Audit of a supervisor (or admin) accepting what the rules refused, with the reason."""

    __tablename__ = "overrides"
    __table_args__ = (Index("ix_overrides_timeline", "lead_id", "occurred_at", "override_id"),)

    override_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))  # "stage_gate" | "activity"
    subject_id: Mapped[str] = mapped_column(String(36))  # the stage change or the activity
    missing: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    reason: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RepTeam(Base):
    """Each rep's team as last announced by lead routing: claims and reassignments name none."""

    __tablename__ = "rep_teams"

    rep_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
