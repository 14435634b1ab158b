"""lead-router: routing, scoring, reps, teams, history, rule versions.

Revision ID: lead_router_0002
Revises: lead_router_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import salesrail.db.types

revision: str = "lead_router_0002"
down_revision: str | Sequence[str] | None = "lead_router_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = salesrail.db.types.JsonDoc
Instant = salesrail.db.types.UtcDateTime


def upgrade() -> None:
    with op.batch_alter_table("leads") as leads:
        leads.add_column(
            sa.Column("company_key", sa.String(200), nullable=False, server_default="")
        )
        leads.add_column(
            sa.Column("company_block", sa.String(8), nullable=False, server_default="")
        )
        leads.add_column(sa.Column("city_name", sa.String(64), nullable=True))
        leads.add_column(sa.Column("province", sa.String(64), nullable=True))
        leads.add_column(sa.Column("team_id", sa.String(64), nullable=True))
        leads.add_column(sa.Column("duplicate_of", sa.String(36), nullable=True))
        leads.add_column(sa.Column("qualified", sa.Boolean(), nullable=True))
        leads.add_column(sa.Column("score_reasons", Json, nullable=False, server_default="[]"))
        leads.add_column(sa.Column("enrichment", Json, nullable=False, server_default="{}"))
        leads.add_column(
            sa.Column("enrichment_status", sa.String(16), nullable=False, server_default="pending")
        )
        leads.add_column(sa.Column("route_rule", sa.String(100), nullable=True))
        leads.add_column(sa.Column("rules_version", sa.Integer(), nullable=True))
        leads.add_column(sa.Column("assigned_at", Instant(), nullable=True))
        leads.alter_column("route", type_=sa.String(1000), existing_type=sa.String(500))
        leads.create_index("ix_leads_phone", ["phone"])
        leads.create_index("ix_leads_company_block", ["company_block"])
        leads.create_index("ix_leads_owner_status", ["owner_id", "status"])
        leads.create_index("ix_leads_status_city", ["status", "city"])

    op.create_table(
        "lead_history",
        sa.Column("seq", salesrail.db.types.BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("at", Instant(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("detail", Json, nullable=False),
    )
    op.create_index("ix_lead_history_lead", "lead_history", ["lead_id", "seq"])
    op.create_table(
        "teams",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("supervisor_id", sa.String(64), nullable=True),
        sa.Column("channels", Json, nullable=False),
        sa.Column("created_at", Instant(), nullable=False),
        sa.Column("updated_at", Instant(), nullable=False),
    )
    op.create_table(
        "reps",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("team_id", sa.String(64), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("cities", Json, nullable=False),
        sa.Column("categories", Json, nullable=False),
        sa.Column("cap", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("open_leads", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("channels", Json, nullable=False),
        sa.Column("created_at", Instant(), nullable=False),
        sa.Column("updated_at", Instant(), nullable=False),
    )
    op.create_table(
        "rule_sets",
        sa.Column("id", salesrail.db.types.BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("document", Json, nullable=False),
        sa.Column("created_at", Instant(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("kind", "version", name="uq_rule_sets_kind_version"),
    )
    op.create_table(
        "round_robin_cursors",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    for table in ("round_robin_cursors", "rule_sets", "reps", "teams"):
        op.drop_table(table)
    op.drop_index("ix_lead_history_lead", table_name="lead_history")
    op.drop_table("lead_history")
    with op.batch_alter_table("leads") as leads:
        for index in (
            "ix_leads_phone",
            "ix_leads_company_block",
            "ix_leads_owner_status",
            "ix_leads_status_city",
        ):
            leads.drop_index(index)
        for column in (
            "company_key",
            "company_block",
            "city_name",
            "province",
            "team_id",
            "duplicate_of",
            "qualified",
            "score_reasons",
            "enrichment",
            "enrichment_status",
            "route_rule",
            "rules_version",
            "assigned_at",
        ):
            leads.drop_column(column)
