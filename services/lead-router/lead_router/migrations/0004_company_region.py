"""lead-router: the place a lead's company name names, kept with the lead.

Leads stored before this revision keep NULL: duplicate checks find their place in the name,
as before.

Revision ID: lead_router_0004
Revises: lead_router_0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "lead_router_0004"
down_revision: str | Sequence[str] | None = "lead_router_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as leads:
        leads.add_column(sa.Column("company_region", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads") as leads:
        leads.drop_column("company_region")
