"""Tables every service database has: the outbox and the record of processed events."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, LargeBinary, MetaData, String, Table, Text

from salesrail.db.types import BigIntPK, UtcDateTime

plumbing_metadata = MetaData()

outbox = Table(
    "outbox",
    plumbing_metadata,
    Column("seq", BigIntPK, primary_key=True, autoincrement=True),
    Column("event_id", String(128), nullable=False, unique=True),
    Column("subject", String(255), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
)
# The relay only ever looks for unsent rows in order.
Index(
    "ix_outbox_unsent",
    outbox.c.seq,
    postgresql_where=outbox.c.sent_at.is_(None),
    sqlite_where=outbox.c.sent_at.is_(None),
)
Index("ix_outbox_sent_at", outbox.c.sent_at)

processed_events = Table(
    "processed_events",
    plumbing_metadata,
    Column("consumer", String(100), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("processed_at", UtcDateTime, nullable=False),
)
Index("ix_processed_events_processed_at", processed_events.c.processed_at)
