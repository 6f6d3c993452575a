"""telephony: sms stop, call hangups, inbound message ids

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:47:45.176627
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import routing.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider_id", name=op.f("pk_inbound_messages")),
    )
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("hangup_due_at", routing.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("hung_up_at", routing.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_pages_hangup_due",
            ["hangup_due_at"],
            unique=False,
            postgresql_where=sa.text("hangup_due_at IS NOT NULL AND hung_up_at IS NULL"),
            sqlite_where=sa.text("hangup_due_at IS NOT NULL AND hung_up_at IS NULL"),
        )

    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sms_stopped_at", routing.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_column("sms_stopped_at")

    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_pages_hangup_due",
            postgresql_where=sa.text("hangup_due_at IS NOT NULL AND hung_up_at IS NULL"),
            sqlite_where=sa.text("hangup_due_at IS NOT NULL AND hung_up_at IS NULL"),
        )
        batch_op.drop_column("hung_up_at")
        batch_op.drop_column("hangup_due_at")

    op.drop_table("inbound_messages")
