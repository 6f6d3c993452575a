"""personal data: encrypted phone numbers and descriptions, lookup hashes, retention

Phone numbers and descriptions become encrypted text (routing/crypto.py) with a keyed-hash
column beside each phone number for lookups; reports get `erased_at` for the retention job.
Rows written before this revision keep their plaintext and have no lookup hash until
`sos-router keys rotate` encrypts them and fills the hashes in (the application reads both).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import routing.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, length before): the columns that now hold ciphertext.
ENCRYPTED = (
    ("reports", "callback_phone", 20),
    ("staff", "phone", 20),
    ("sos_calls", "from_number", 32),
    ("outbound_messages", "to", 20),
    ("outbound_messages", "body", 1600),
    ("phone_verifications", "phone", 20),
    ("bridge_calls", "to_number", 32),
)
# (table, hash column): keyed hashes of phone numbers, indexed.
HASHES = (
    ("reports", "callback_phone_hash"),
    ("staff", "phone_hash"),
    ("outbound_messages", "to_hash"),
)
UNERASED = sa.text("erased_at IS NULL")


def upgrade() -> None:
    for table, column, length in ENCRYPTED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.String(length=length), type_=sa.Text(), nullable=False
            )
    for table, column in HASHES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(column, sa.String(length=64), nullable=True))
            batch_op.create_index(f"ix_{table}_{column}", [column], unique=False)
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("erased_at", routing.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_index("ix_reports_callback_phone")
        batch_op.create_index(
            "ix_reports_unerased",
            ["received_at"],
            unique=False,
            postgresql_where=UNERASED,
            sqlite_where=UNERASED,
        )


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_unerased", postgresql_where=UNERASED, sqlite_where=UNERASED)
        batch_op.create_index("ix_reports_callback_phone", ["callback_phone"], unique=False)
        batch_op.drop_column("erased_at")
    for table, column in HASHES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_{column}")
            batch_op.drop_column(column)
    # Encrypted values do not fit the old lengths: decrypt them first (there is no command for
    # that; restore a backup taken before the upgrade instead).
    for table, column, length in ENCRYPTED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.Text(), type_=sa.String(length=length), nullable=False
            )
