"""lead-router's tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from salesrail.db.types import JsonDoc, UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData()


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_leads_source_external_id"),
        UniqueConstraint("idempotency_key", name="uq_leads_idempotency_key"),
        Index("ix_leads_received_at", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(300))
    company_name: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    city: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    budget: Mapped[float | None] = mapped_column(Float)
    purchase_timeframe: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    status: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[int | None]
    grade: Mapped[str | None] = mapped_column(String(1))
    route: Mapped[str] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
