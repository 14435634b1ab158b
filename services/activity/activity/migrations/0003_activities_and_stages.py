"""activity: activities, stage changes, overrides; leads learn team, version and deliverables.

Revision ID: activity_0003
Revises: activity_0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import salesrail.db.types

revision: str = "activity_0003"
down_revision: str | Sequence[str] | None = "activity_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = salesrail.db.types.JsonDoc
Instant = salesrail.db.types.UtcDateTime


def upgrade() -> None:
    with op.batch_alter_table("leads") as leads:
        # An owner change may come before the lead itself: its row starts without these.
        leads.alter_column("company_name", existing_type=sa.String(200), nullable=True)
        leads.alter_column("city", existing_type=sa.String(64), nullable=True)
        leads.alter_column("category", existing_type=sa.String(64), nullable=True)
        leads.alter_column("received_at", existing_type=Instant(), nullable=True)
        leads.add_column(sa.Column("team_id", sa.String(64), nullable=True))
        leads.add_column(sa.Column("owner_changed_at", Instant(), nullable=True))
        leads.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
        leads.add_column(sa.Column("dossier", Json, nullable=False, server_default="{}"))

    op.create_table(
        "activities",
        sa.Column("activity_id", sa.String(36), primary_key=True),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("rep_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("occurred_at", Instant(), nullable=False),
        sa.Column("logged_at", Instant(), nullable=False),
        sa.Column("logged_by", sa.String(200), nullable=False),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("transcript", sa.Text(), nullable=True),
        sa.Column("record", Json, nullable=False),
        sa.Column("tech_env_change", sa.Boolean(), nullable=False),
        sa.Column("overridden", sa.Boolean(), nullable=False),
    )
    op.create_index(
        "ix_activities_timeline", "activities", ["lead_id", "occurred_at", "activity_id"]
    )

    op.create_table(
        "stage_changes",
        sa.Column("change_id", sa.String(36), primary_key=True),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("from_stage", sa.String(32), nullable=False),
        sa.Column("to_stage", sa.String(32), nullable=False),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("overridden", sa.Boolean(), nullable=False),
        sa.Column("occurred_at", Instant(), nullable=False),
    )
    op.create_index(
        "ix_stage_changes_timeline", "stage_changes", ["lead_id", "occurred_at", "change_id"]
    )

    op.create_table(
        "overrides",
        sa.Column("override_id", sa.String(36), primary_key=True),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(36), nullable=False),
        sa.Column("missing", Json, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("occurred_at", Instant(), nullable=False),
    )
    op.create_index("ix_overrides_timeline", "overrides", ["lead_id", "occurred_at", "override_id"])

    op.create_table(
        "rep_teams",
        sa.Column("rep_id", sa.String(64), primary_key=True),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("seen_at", Instant(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rep_teams")
    op.drop_table("overrides")
    op.drop_table("stage_changes")
    op.drop_table("activities")
    with op.batch_alter_table("leads") as leads:
        leads.drop_column("dossier")
        leads.drop_column("version")
        leads.drop_column("owner_changed_at")
        leads.drop_column("team_id")
