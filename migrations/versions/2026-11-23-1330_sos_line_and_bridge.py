"""sos line calls and the voice bridge

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:50:40.695631
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import routing.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bridge_calls",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("leg", sa.String(length=16), nullable=False),
        sa.Column("staff_id", sa.String(length=36), nullable=False),
        sa.Column("to_number", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", routing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("fence", sa.Integer(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("created_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_bridge_calls_report_id_reports")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_bridge_calls_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bridge_calls")),
        sa.UniqueConstraint("report_id", "leg", name=op.f("uq_bridge_calls_report_id_leg")),
    )
    with op.batch_alter_table("bridge_calls", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bridge_calls_due",
            ["due_at"],
            unique=False,
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        )

    op.create_table(
        "sos_calls",
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("from_number", sa.String(length=32), nullable=False),
        sa.Column("arrived_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("report_id", sa.String(length=36), nullable=True),
        sa.Column("left_at", routing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_sos_calls_report_id_reports")
        ),
        sa.PrimaryKeyConstraint("call_sid", name=op.f("pk_sos_calls")),
    )
    with op.batch_alter_table("sos_calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sos_calls_report_id"), ["report_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sos_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sos_calls_report_id"))

    op.drop_table("sos_calls")
    with op.batch_alter_table("bridge_calls", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_bridge_calls_due",
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        )

    op.drop_table("bridge_calls")
