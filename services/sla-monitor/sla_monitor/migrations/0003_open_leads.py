"""sla-monitor: the stage of each lead and an index by owner (a rep's open leads).

Revision ID: sla_monitor_0003
Revises: sla_monitor_0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import salesrail.db.types

revision: str = "sla_monitor_0003"
down_revision: str | Sequence[str] | None = "sla_monitor_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sla_entities") as batch:
        batch.add_column(sa.Column("stage", sa.String(32), nullable=True))
        batch.add_column(sa.Column("stage_since", salesrail.db.types.UtcDateTime(), nullable=True))
        batch.create_index("ix_sla_entities_owner_id", ["owner_id"])


def downgrade() -> None:
    with op.batch_alter_table("sla_entities") as batch:
        batch.drop_index("ix_sla_entities_owner_id")
        batch.drop_column("stage_since")
        batch.drop_column("stage")
