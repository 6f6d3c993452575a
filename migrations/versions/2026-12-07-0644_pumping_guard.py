"""pumping guard: customer sends, breakers and blocks

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-07 06:44:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import routing.db

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "customer_sends",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("number_key", sa.String(length=32), nullable=False),
        sa.Column("prefix_key", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_sends")),
    )
    op.create_index("ix_customer_sends_at", "customer_sends", ["at"])
    op.create_table(
        "send_breakers",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("opened_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("open_until", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", routing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_breakers")),
    )
    op.create_index("ix_send_breakers_scope_key", "send_breakers", ["scope", "key"])
    op.create_table(
        "send_blocks",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("to", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_send_blocks_report_id_reports")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_blocks")),
    )


def downgrade() -> None:
    op.drop_table("send_blocks")
    op.drop_index("ix_send_breakers_scope_key", table_name="send_breakers")
    op.drop_table("send_breakers")
    op.drop_index("ix_customer_sends_at", table_name="customer_sends")
    op.drop_table("customer_sends")
