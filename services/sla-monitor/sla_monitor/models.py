"""sla-monitor's tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from salesrail.db.types import BigIntPK, JsonDoc, UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData()


class SlaClock(Base):
    """One cycle of one policy's clock on one entity.

    `cycle` counts restarts of the same policy on the same entity (a lead released and
    re-routed starts cycle 2); `is_current` marks the newest cycle, the one events move.
    `next_fire_at` is set only while something is left to fire (warning, alert, escalation):
    the scheduler's whole query is "next_fire_at <= now, oldest first".
    """

    __tablename__ = "clocks"
    __table_args__ = (
        # Entity first: the API and the event handlers look clocks up by entity.
        UniqueConstraint(
            "entity_type", "entity_id", "policy", "cycle", name="uq_clocks_entity_policy_cycle"
        ),
        Index("ix_clocks_next_fire_at", "next_fire_at"),
        Index("ix_clocks_lead_id", "lead_id"),
        # What each event batch reads: the current cycles of its entities, by id.
        Index(
            "ix_clocks_current_entity",
            "entity_id",
            postgresql_where=text("is_current"),
            sqlite_where=text("is_current"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    policy: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[int] = mapped_column(Integer, default=1)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(128))
    cycle: Mapped[int] = mapped_column(default=1)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    lead_id: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    warn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_step: Mapped[int] = mapped_column(Integer, default=0)
    next_fire_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    remaining_s: Mapped[float | None] = mapped_column(Float)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SlaEntity(Base):
    """Who owns a lead, ticket or rep's work now (and a lead's stage); also the row a batch
    locks per entity, so two consumers (or replicas) never move the same entity's clocks at
    once."""

    __tablename__ = "sla_entities"
    # A rep's open leads: the leads they own whose stage is not won or lost.
    __table_args__ = (Index("ix_sla_entities_owner_id", "owner_id"),)

    # Id first: a batch looks its entities up by id (a type matches thousands of rows).
    entity_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(String(128))
    team_id: Mapped[str | None] = mapped_column(String(128))
    owner_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A lead's stage (from lead.stage_changed), and since when.
    stage: Mapped[str | None] = mapped_column(String(32))
    stage_since: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SlaAlert(Base):
    """One fired step of one clock: unique per (policy, entity, cycle, kind), so it fires once."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint(
            "policy", "entity_type", "entity_id", "cycle", "kind", name="uq_alerts_clock_step"
        ),
        Index("ix_alerts_fired_at_id", "fired_at", "id"),
        Index("ix_alerts_lead_id", "lead_id"),
        Index("ix_alerts_owner_id", "owner_id"),
        # Which of a firing batch's clocks were acknowledged: few rows, looked up by clock.
        Index(
            "ix_alerts_acknowledged_clock",
            "clock_id",
            postgresql_where=text("state = 'acknowledged'"),
            sqlite_where=text("state = 'acknowledged'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    policy: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))  # warning | alert | escalation_<n>
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(128))
    cycle: Mapped[int] = mapped_column(Integer)
    clock_id: Mapped[int] = mapped_column(BigIntPK)
    lead_id: Mapped[str | None] = mapped_column(String(128))
    ticket_id: Mapped[str | None] = mapped_column(String(128))
    owner_id: Mapped[str | None] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(32))
    notify: Mapped[Any] = mapped_column(JsonDoc)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    point_at: Mapped[datetime] = mapped_column(UtcDateTime)  # the instant of this step
    fired_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16))  # open | acknowledged | retracted
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    retracted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PolicyVersion(Base):
    """Every version of the policy document ever stored, with who stored it and when."""

    __tablename__ = "policy_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


clocks = SlaClock.__table__
entities = SlaEntity.__table__
alerts = SlaAlert.__table__
