"""activity: attachments (content-addressed files of a lead).

Revision ID: activity_0002
Revises: activity_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import salesrail.db.types

revision: str = "activity_0002"
down_revision: str | Sequence[str] | None = "activity_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("attachment_id", sa.String(64), primary_key=True),
        sa.Column("lead_id", sa.String(64), nullable=False, index=True),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("original_name", sa.String(255), nullable=True),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("uploaded_at", salesrail.db.types.UtcDateTime(), nullable=False),
        sa.Column("taken_at", salesrail.db.types.UtcDateTime(), nullable=True),
        sa.Column("gps_lat", sa.Float(), nullable=True),
        sa.Column("gps_lon", sa.Float(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("attachments")
