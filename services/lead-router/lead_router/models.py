"""lead-router's tables."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from salesrail.db.types import BigIntPK, JsonDoc, UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData()


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_leads_source_external_id"),
        UniqueConstraint("idempotency_key", name="uq_leads_idempotency_key"),
        Index("ix_leads_received_at", "received_at"),
        Index("ix_leads_phone", "phone"),
        Index("ix_leads_company_block", "company_block"),
        Index("ix_leads_owner_status", "owner_id", "status"),
        Index("ix_leads_status_city", "status", "city"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(300))
    company_name: Mapped[str] = mapped_column(String(200))
    # The normalised company name (no legal suffix, no city prefix) and its first characters,
    # for finding the same customer again.
    company_key: Mapped[str] = mapped_column(String(200), default="")
    company_block: Mapped[str] = mapped_column(String(8), default="")
    # The place the company name names (杭州市), "" for none; NULL on leads stored before it was
    # kept. Stored so that comparing a new lead with hundreds of earlier ones parses no names.
    company_region: Mapped[str | None] = mapped_column(String(64))
    contact_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32))  # E.164
    email: Mapped[str | None] = mapped_column(String(254))
    city: Mapped[str] = mapped_column(String(64))  # as sent
    city_name: Mapped[str | None] = mapped_column(String(64))  # canonical, e.g. 杭州市
    province: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    budget: Mapped[float | None] = mapped_column(Float)
    purchase_timeframe: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    status: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[str | None] = mapped_column(String(64))
    team_id: Mapped[str | None] = mapped_column(String(64))
    duplicate_of: Mapped[str | None] = mapped_column(String(36))
    score: Mapped[int | None]
    grade: Mapped[str | None] = mapped_column(String(1))
    qualified: Mapped[bool | None]
    score_reasons: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    enrichment: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    enrichment_status: Mapped[str] = mapped_column(String(16), default="pending")
    route: Mapped[str] = mapped_column(String(1000))
    route_rule: Mapped[str | None] = mapped_column(String(100))
    rules_version: Mapped[int | None]
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    assigned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


LEAD_COLUMNS: tuple[str, ...] = tuple(column.key for column in Lead.__table__.columns)


class LeadRecord:
    """A new lead on its way through intake: `Lead`'s columns as plain attributes.

    Intake stores a batch's leads with one set-at-a-time INSERT (see `intake`), so it needs no
    ORM instance, whose construction and flush cost more than the rest of a lead's intake.
    """

    __slots__ = LEAD_COLUMNS

    def __init__(self, **values: Any) -> None:
        for name in LEAD_COLUMNS:
            setattr(self, name, values.pop(name, None))
        if values:
            raise TypeError(f"not columns of leads: {sorted(values)}")

    if TYPE_CHECKING:  # the attributes, for type checkers (the slots hold them at run time)
        id: str
        source: str
        external_id: str | None
        idempotency_key: str | None
        company_name: str
        company_key: str
        company_block: str
        company_region: str | None
        contact_name: str
        phone: str
        email: str | None
        city: str
        city_name: str | None
        province: str | None
        category: str
        budget: float | None
        purchase_timeframe: str | None
        notes: str | None
        tags: list[str]
        status: str
        owner_id: str | None
        team_id: str | None
        duplicate_of: str | None
        score: int | None
        grade: str | None
        qualified: bool | None
        score_reasons: list[dict[str, Any]]
        enrichment: dict[str, Any]
        enrichment_status: str
        route: str
        route_rule: str | None
        rules_version: int | None
        received_at: datetime
        created_at: datetime
        created_by: str
        assigned_at: datetime | None


#: A lead as the use cases read and change it: stored (ORM) or on its way in (intake).
AnyLead = Lead | LeadRecord


class LeadHistory(Base):
    """What happened to a lead, in order: intake, score, route, pool, claim, duplicates."""

    __tablename__ = "lead_history"
    __table_args__ = (Index("ix_lead_history_lead", "lead_id", "seq"),)

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    by: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    supervisor_id: Mapped[str | None] = mapped_column(String(64))
    channels: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    # Roles this team answers for ("ops_support", ...): notifications to a role reach it.
    roles: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Rep(Base):
    __tablename__ = "reps"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.id"))
    cities: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    categories: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    cap: Mapped[int | None] = mapped_column(Integer)  # open leads at most; None = no cap
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|away|inactive
    # Kept by the same transactions that assign and release leads, so it is always exact.
    open_leads: Mapped[int] = mapped_column(Integer, default=0)
    channels: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    # Roles this person holds besides selling ("trainer", "sales_director", "manager", ...).
    roles: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RuleSetVersion(Base):
    """Every routing or scoring rule set ever accepted; exactly one per kind is active."""

    __tablename__ = "rule_sets"
    __table_args__ = (UniqueConstraint("kind", "version", name="uq_rule_sets_kind_version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # routing | scoring
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)  # the YAML as submitted
    document: Mapped[dict[str, Any]] = mapped_column(JsonDoc)  # as validated
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class Cursor(Base):
    """Round-robin positions, one per rule (or team) that distributes leads in turn."""

    __tablename__ = "round_robin_cursors"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
