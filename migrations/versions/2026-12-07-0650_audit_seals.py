"""audit seals: the hash chain over the audit events, and both tables append-only

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 06:41:33
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import routing.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("audit_events", "audit_seals")


def upgrade() -> None:
    op.create_table(
        "audit_seals",
        sa.Column("chain_no", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sealed_at", routing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["audit_events.id"], name=op.f("fk_audit_seals_event_id_audit_events")
        ),
        sa.PrimaryKeyConstraint("chain_no", name=op.f("pk_audit_seals")),
    )
    with op.batch_alter_table("audit_seals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_seals_event_id"), ["event_id"], unique=True)

    # Append-only, whoever connects: the owner role the application uses included. Only someone
    # who can switch triggers off (a superuser, or whoever holds the database file) gets past
    # this, and `sos-router audit verify` shows what they changed.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
            )
            op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC")
    else:
        for table in TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION audit_append_only()")
    else:
        for table in TABLES:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_no_{action}")
    with op.batch_alter_table("audit_seals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_seals_event_id"))
    op.drop_table("audit_seals")
