"""sla-monitor: clocks of every policy (versions, steps, pause), entities, alerts, policies.

Revision ID: sla_monitor_0002
Revises: sla_monitor_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import salesrail.db.types

revision: str = "sla_monitor_0002"
down_revision: str | Sequence[str] | None = "sla_monitor_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Utc = salesrail.db.types.UtcDateTime


def upgrade() -> None:
    with op.batch_alter_table("clocks") as batch:
        batch.add_column(
            sa.Column("policy_version", sa.Integer(), nullable=False, server_default="1")
        )
        batch.add_column(
            sa.Column("is_current", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("lead_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("warn_at", _Utc(), nullable=True))
        batch.add_column(sa.Column("next_step", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_fire_at", _Utc(), nullable=True))
        batch.add_column(sa.Column("paused_at", _Utc(), nullable=True))
        batch.add_column(sa.Column("remaining_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("stopped_at", _Utc(), nullable=True))
        batch.create_index("ix_clocks_next_fire_at", ["next_fire_at"])
        batch.create_index("ix_clocks_lead_id", ["lead_id"])
        batch.create_index(
            "ix_clocks_current_entity",
            ["entity_id"],
            postgresql_where=sa.text("is_current"),
            sqlite_where=sa.text("is_current"),
        )
    # Clocks of the first release: lead clocks still running come due at their deadline.
    op.execute(
        "UPDATE clocks SET lead_id = entity_id, next_fire_at = due_at "
        "WHERE entity_type = 'lead' AND state = 'running'"
    )
    op.create_table(
        "sla_entities",
        sa.Column("entity_id", sa.String(128), primary_key=True),
        sa.Column("entity_type", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(128), nullable=True),
        sa.Column("team_id", sa.String(128), nullable=True),
        sa.Column("owner_since", _Utc(), nullable=True),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(128), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("clock_id", salesrail.db.types.BigIntPK, nullable=False),
        sa.Column("lead_id", sa.String(128), nullable=True),
        sa.Column("ticket_id", sa.String(128), nullable=True),
        sa.Column("owner_id", sa.String(128), nullable=True),
        sa.Column("severity", sa.String(32), nullable=False),
        sa.Column("notify", salesrail.db.types.JsonDoc, nullable=False),
        sa.Column("due_at", _Utc(), nullable=False),
        sa.Column("point_at", _Utc(), nullable=False),
        sa.Column("fired_at", _Utc(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("acknowledged_by", sa.String(128), nullable=True),
        sa.Column("acknowledged_at", _Utc(), nullable=True),
        sa.Column("retracted_at", _Utc(), nullable=True),
        sa.UniqueConstraint(
            "policy", "entity_type", "entity_id", "cycle", "kind", name="uq_alerts_clock_step"
        ),
    )
    op.create_index("ix_alerts_fired_at_id", "alerts", ["fired_at", "id"])
    op.create_index("ix_alerts_lead_id", "alerts", ["lead_id"])
    op.create_index("ix_alerts_owner_id", "alerts", ["owner_id"])
    op.create_table(
        "policy_versions",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", _Utc(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("policy_versions")
    op.drop_table("alerts")
    op.drop_table("sla_entities")
    with op.batch_alter_table("clocks") as batch:
        batch.drop_index("ix_clocks_current_entity")
        batch.drop_index("ix_clocks_lead_id")
        batch.drop_index("ix_clocks_next_fire_at")
        for column in (
            "stopped_at",
            "remaining_s",
            "paused_at",
            "next_fire_at",
            "next_step",
            "warn_at",
            "lead_id",
            "is_current",
            "policy_version",
        ):
            batch.drop_column(column)
