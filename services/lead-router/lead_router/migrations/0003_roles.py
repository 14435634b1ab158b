"""lead-router: roles held by reps and teams (who a notification to a role reaches).

Revision ID: lead_router_0003
Revises: lead_router_0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import salesrail.db.types

revision: str = "lead_router_0003"
down_revision: str | Sequence[str] | None = "lead_router_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("reps", "teams"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("roles", salesrail.db.types.JsonDoc, nullable=False, server_default="[]")
            )


def downgrade() -> None:
    for table in ("reps", "teams"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("roles")
