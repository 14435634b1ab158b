"""activity's tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, MetaData, String
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
