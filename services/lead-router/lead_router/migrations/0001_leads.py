"""lead-router: leads.

Revision ID: lead_router_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import salesrail.db.types

revision: str = "lead_router_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("lead_router",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=True),
        sa.Column("idempotency_key", sa.String(300), nullable=True),
        sa.Column("company_name", sa.String(200), nullable=False),
        sa.Column("contact_name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("city", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("budget", sa.Float(), nullable=True),
        sa.Column("purchase_timeframe", sa.String(100), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("tags", salesrail.db.types.JsonDoc, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("grade", sa.String(1), nullable=True),
        sa.Column("route", sa.String(500), nullable=False),
        sa.Column("received_at", salesrail.db.types.UtcDateTime(), nullable=False),
        sa.Column("created_at", salesrail.db.types.UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("source", "external_id", name="uq_leads_source_external_id"),
        sa.UniqueConstraint("idempotency_key", name="uq_leads_idempotency_key"),
    )
    op.create_index("ix_leads_received_at", "leads", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_leads_received_at", table_name="leads")
    op.drop_table("leads")
