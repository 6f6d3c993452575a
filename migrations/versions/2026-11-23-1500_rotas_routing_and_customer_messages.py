"""rotas routing and customer messages

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import routing.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("layers", sa.JSON(), nullable=False),
        sa.Column("created_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("name", name=op.f("uq_schedules_name")),
    )
    op.create_table(
        "phone_verifications",
        sa.Column("staff_id", sa.String(length=36), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("expires_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_phone_verifications_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("staff_id", name=op.f("pk_phone_verifications")),
    )
    op.create_table(
        "schedule_overrides",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("schedule_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("staff_id", sa.String(length=36), nullable=False),
        sa.Column("replaces_staff_id", sa.String(length=36), nullable=True),
        sa.Column("starts_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["replaces_staff_id"],
            ["staff.id"],
            name=op.f("fk_schedule_overrides_replaces_staff_id_staff"),
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_overrides_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_schedule_overrides_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_overrides")),
    )
    with op.batch_alter_table("schedule_overrides", schema=None) as batch_op:
        batch_op.create_index(
            "ix_schedule_overrides_schedule_ends", ["schedule_id", "ends_at"], unique=False
        )

    op.create_table(
        "outbound_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("report_id", sa.String(length=36), nullable=True),
        sa.Column("staff_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("to", sa.String(length=20), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("body", sa.String(length=1600), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", routing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("fence", sa.Integer(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("sent_at", routing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_outbound_messages_report_id_reports")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_outbound_messages_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_messages")),
    )
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbound_messages_due",
            ["due_at"],
            unique=False,
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        )
        batch_op.create_index(
            "ix_outbound_messages_lease",
            ["lease_until"],
            unique=False,
            postgresql_where=sa.text("state = 'sending'"),
            sqlite_where=sa.text("state = 'sending'"),
        )
        batch_op.create_index("ix_outbound_messages_report_id", ["report_id"], unique=False)

    with op.batch_alter_table("chains", schema=None) as batch_op:
        batch_op.add_column(sa.Column("all_hands", sa.JSON(), nullable=True))

    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tier_no", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column(
                "bundle_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.create_index("ix_pages_bundle_id", ["bundle_id"], unique=False)
        batch_op.create_index(
            "ix_pages_staff_channel_sent", ["staff_id", "channel", "sent_at"], unique=False
        )

    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("callback_at", routing.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("attempt_base", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("contacts", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("previous_helper_id", sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_reports_previous_helper_id_staff"),
            "staff",
            ["previous_helper_id"],
            ["id"],
        )
        batch_op.create_index("ix_reports_acknowledged_by_id", ["acknowledged_by_id"], unique=False)
        batch_op.create_index("ix_reports_callback_phone", ["callback_phone"], unique=False)
        batch_op.create_index("ix_reports_customer_ref", ["customer_ref"], unique=False)

    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skills", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("phone_verified_at", routing.db.UTCDateTime(timezone=True), nullable=True)
        )
    # Status page tokens move to their own table: a case may have several (app and web).
    op.create_table(
        "status_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_status_tokens_report_id_reports")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_status_tokens")),
    )
    with op.batch_alter_table("status_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_status_tokens_report_id"), ["report_id"], unique=False)
    op.execute(
        "INSERT INTO status_tokens (token_hash, report_id, created_at) "
        "SELECT status_token_hash, id, received_at FROM reports "
        "WHERE status_token_hash IS NOT NULL"
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_constraint("uq_reports_status_token_hash", type_="unique")
        batch_op.drop_column("status_token_hash")


def downgrade() -> None:
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_column("phone_verified_at")
        batch_op.drop_column("skills")

    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_customer_ref")
        batch_op.drop_index("ix_reports_callback_phone")
        batch_op.drop_index("ix_reports_acknowledged_by_id")
        batch_op.drop_constraint(
            batch_op.f("fk_reports_previous_helper_id_staff"), type_="foreignkey"
        )
        batch_op.drop_column("previous_helper_id")
        batch_op.drop_column("contacts")
        batch_op.drop_column("attempt_base")
        batch_op.drop_column("callback_at")

    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.drop_index("ix_pages_staff_channel_sent")
        batch_op.drop_index("ix_pages_bundle_id")
        batch_op.drop_column("bundle_id")
        batch_op.drop_column("tier_no")

    with op.batch_alter_table("chains", schema=None) as batch_op:
        batch_op.drop_column("all_hands")

    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_outbound_messages_report_id")
        batch_op.drop_index(
            "ix_outbound_messages_lease",
            postgresql_where=sa.text("state = 'sending'"),
            sqlite_where=sa.text("state = 'sending'"),
        )
        batch_op.drop_index(
            "ix_outbound_messages_due",
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        )

    op.drop_table("outbound_messages")
    with op.batch_alter_table("schedule_overrides", schema=None) as batch_op:
        batch_op.drop_index("ix_schedule_overrides_schedule_ends")

    op.drop_table("schedule_overrides")
    op.drop_table("phone_verifications")
    op.drop_table("schedules")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_token_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_reports_status_token_hash", ["status_token_hash"])
    op.execute(
        "UPDATE reports SET status_token_hash = (SELECT max(token_hash) FROM status_tokens "
        "WHERE status_tokens.report_id = reports.id)"
    )
    with op.batch_alter_table("status_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_status_tokens_report_id"))
    op.drop_table("status_tokens")
