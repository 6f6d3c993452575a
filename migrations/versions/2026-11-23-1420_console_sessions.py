"""console sessions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 13:11:37.381490
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import routing.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.String(length=36), nullable=False),
        sa.Column("staff_id", sa.String(length=36), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", routing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_staff_sessions_staff_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["token_id"], ["api_tokens.id"], name=op.f("fk_staff_sessions_token_id_api_tokens")
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_staff_sessions")),
    )


def downgrade() -> None:
    op.drop_table("staff_sessions")
