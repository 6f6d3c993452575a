"""ack links

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:07:05.736497
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import routing.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ack_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("page_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("expires_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", routing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["page_id"], ["pages.id"], name=op.f("fk_ack_links_page_id_pages")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_ack_links")),
    )
    with op.batch_alter_table("ack_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ack_links_page_id"), ["page_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ack_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ack_links_page_id"))

    op.drop_table("ack_links")
