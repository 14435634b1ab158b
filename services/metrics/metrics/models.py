"""metrics' tables."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData()


class LeadIntakeDaily(Base):
    """Leads received per business day (Asia/Shanghai) and source."""

    __tablename__ = "lead_intake_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int]
