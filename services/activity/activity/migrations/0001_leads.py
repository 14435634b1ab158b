"""activity: its view of leads (owner and stage).

Revision ID: activity_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import salesrail.db.types

revision: str = "activity_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("activity",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("lead_id", sa.String(64), primary_key=True),
        sa.Column("company_name", sa.String(200), nullable=False),
        sa.Column("city", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("received_at", salesrail.db.types.UtcDateTime(), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=True),
        sa.Column("stage", sa.String(32), nullable=False, server_default="contact"),
        sa.Column("updated_at", salesrail.db.types.UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leads")
