from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, validates

from routing import crypto
from routing.crypto import EncryptedText
from routing.db import Base, UTCDateTime, new_id


class Report(Base):
    """One customer emergency, from the first contact to its verdict on the 10-minute promise."""

    __tablename__ = "reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    category: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    # Encrypted (routing/crypto.py); the same customer is found through the keyed hash.
    callback_phone: Mapped[str] = mapped_column(EncryptedText())
    callback_phone_hash: Mapped[str | None] = mapped_column(
        String(64), index=True, info={"lookup_of": "callback_phone"}
    )
    customer_ref: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(EncryptedText())
    status: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    sla_met: Mapped[bool | None] = mapped_column(Boolean)
    is_exhausted: Mapped[bool] = mapped_column(Boolean, default=False)
    # The chain as it was when the report arrived (None: no chain was configured).
    chain: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by_token_id: Mapped[str | None] = mapped_column(String(36))
    # The customer asked to be called at this time: the chain starts then, the promise counts
    # from then.
    callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The first chain round of the current escalation (a callback appointment starts a new one).
    attempt_base: Mapped[int] = mapped_column(Integer, default=0)
    # Who helped this customer (same customer_ref or phone) in the 24 hours before: paged first.
    previous_helper_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    # How many customer contacts joined this case (a second report, call or SMS while it is open).
    contacts: Mapped[int] = mapped_column(Integer, default=1)
    # When the retention job erased the customer's data (phone, description, customer_ref, texts,
    # calls); the verdict, its times and the timeline stay.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @validates("callback_phone")
    def _hash_phone(self, _key: str, phone: str) -> str:
        self.callback_phone_hash = crypto.phone_hash(phone)
        return phone

    def handled_at(self) -> datetime:
        """When a colleague last handled the case: resolved it, else accepted it (it must have
        been accepted)."""
        handled = self.resolved_at or self.acknowledged_at
        assert handled is not None
        return handled

    __table_args__ = (
        Index("ix_reports_received_at", "received_at"),
        # What the retention job has still to look at.
        Index(
            "ix_reports_unerased",
            "received_at",
            postgresql_where=text("erased_at IS NULL"),
            sqlite_where=text("erased_at IS NULL"),
        ),
        Index("ix_reports_customer_ref", "customer_ref"),
        Index("ix_reports_acknowledged_by_id", "acknowledged_by_id"),
    )


class IdempotencyKey(Base):
    """A client's `Idempotency-Key`, scoped to its token, with the hash of the body it came with."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # No foreign key: the key row is written first, so a conflicting request writes nothing else.
    report_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StatusToken(Base):
    """The SHA-256 of a secret in a customer's status page URL (/status/{token}). A case may have
    several: one per contact that made one (the app, then the web form), and all keep working."""

    __tablename__ = "status_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
