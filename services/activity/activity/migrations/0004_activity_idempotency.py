"""activity: an activity remembers its caller's Idempotency-Key (one per caller and key).

Revision ID: activity_0004
Revises: activity_0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "activity_0004"
down_revision: str | Sequence[str] | None = "activity_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Activities logged without a key keep NULL: NULLs never collide in a unique constraint
    # (PostgreSQL and SQLite alike), so only keyed activities are held to one per key.
    with op.batch_alter_table("activities") as activities:
        activities.add_column(sa.Column("idempotency_key", sa.String(200), nullable=True))
        activities.add_column(sa.Column("request_hash", sa.String(64), nullable=True))
        activities.create_unique_constraint(
            "uq_activities_idempotency_key", ["logged_by", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("activities") as activities:
        activities.drop_constraint("uq_activities_idempotency_key", type_="unique")
        activities.drop_column("request_hash")
        activities.drop_column("idempotency_key")
