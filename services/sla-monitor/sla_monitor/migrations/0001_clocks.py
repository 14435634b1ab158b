"""sla-monitor: clocks.

Revision ID: sla_monitor_0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import salesrail.db.types

revision: str = "sla_monitor_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("sla_monitor",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clocks",
        sa.Column("id", salesrail.db.types.BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(128), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("started_at", salesrail.db.types.UtcDateTime(), nullable=False),
        sa.Column("due_at", salesrail.db.types.UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", salesrail.db.types.UtcDateTime(), nullable=False),
        sa.UniqueConstraint(
            "entity_type", "entity_id", "policy", "cycle", name="uq_clocks_entity_policy_cycle"
        ),
    )


def downgrade() -> None:
    op.drop_table("clocks")
