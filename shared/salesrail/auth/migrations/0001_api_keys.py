"""API keys of machine clients (the auth database).

Revision ID: auth_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import salesrail.db.types

revision: str = "auth_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("auth",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("rep_id", sa.String(64), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("scopes", salesrail.db.types.JsonDoc, nullable=False),
        sa.Column("created_at", salesrail.db.types.UtcDateTime(), nullable=False),
        sa.Column("revoked_at", salesrail.db.types.UtcDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
