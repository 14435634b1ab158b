"""activity's tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from activity import rules
from salesrail.db.types import UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData()


class Lead(Base):
    """activity's own view of a lead, kept from lead-router's events: who owns it, which stage."""

    __tablename__ = "leads"

    lead_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    company_name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    owner_id: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(32), default=rules.INITIAL_STAGE)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
