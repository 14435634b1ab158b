"""sla-monitor's tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from salesrail.db.types import BigIntPK, UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData()


class SlaClock(Base):
    """One running (or finished) deadline of one policy on one entity.

    `cycle` counts restarts of the same policy on the same entity (a lead released and
    re-routed starts cycle 2); the unique key makes starting a clock idempotent.
    """

    __tablename__ = "clocks"
    __table_args__ = (
        # Entity first: the API looks clocks up by entity.
        UniqueConstraint(
            "entity_type", "entity_id", "policy", "cycle", name="uq_clocks_entity_policy_cycle"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    policy: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(128))
    cycle: Mapped[int] = mapped_column(default=1)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
