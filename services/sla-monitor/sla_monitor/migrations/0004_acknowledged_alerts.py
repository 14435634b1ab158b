"""sla-monitor: index acknowledged alerts by clock.

Firing a batch asks which of its (up to 1,000) clocks have an acknowledged alert. Without an
index on clock_id PostgreSQL compared every alert row with the whole list, a cost that grew
with every alert fired (100 k overdue clocks slowed to a crawl). Acknowledged alerts are few:
a partial index keeps the lookup small and cheap to maintain.

Revision ID: sla_monitor_0004
Revises: sla_monitor_0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sla_monitor_0004"
down_revision: str | Sequence[str] | None = "sla_monitor_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACKNOWLEDGED = sa.text("state = 'acknowledged'")


def upgrade() -> None:
    op.create_index(
        "ix_alerts_acknowledged_clock",
        "alerts",
        ["clock_id"],
        postgresql_where=ACKNOWLEDGED,
        sqlite_where=ACKNOWLEDGED,
    )


def downgrade() -> None:
    op.drop_index("ix_alerts_acknowledged_clock", table_name="alerts")
