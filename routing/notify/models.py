from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, validates

from routing import crypto
from routing.crypto import EncryptedText
from routing.db import Base, BigIntId, UTCDateTime


class OutboundMessage(Base):
    """The outbox for texts that are not pages: a customer's receipt and "Anna calls you now", a
    staff member's verification code. Sent only after the commit that created it.

    States: pending → sending → sent → delivered, or failed, canceled, unknown.
    `kind`: receipt, accepted, callback, verification. `channel`: sms or voice.
    """

    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    report_id: Mapped[str | None] = mapped_column(ForeignKey("reports.id"))
    staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    # Encrypted (routing/crypto.py); count or find texts to a number by `to_hash`.
    to: Mapped[str] = mapped_column(EncryptedText())
    to_hash: Mapped[str | None] = mapped_column(String(64), index=True, info={"lookup_of": "to"})
    language: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(EncryptedText())
    state: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fence: Mapped[int] = mapped_column(Integer, default=0)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    provider: Mapped[str | None] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index(
            "ix_outbound_messages_due",
            "due_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index(
            "ix_outbound_messages_lease",
            "lease_until",
            postgresql_where=text("state = 'sending'"),
            sqlite_where=text("state = 'sending'"),
        ),
        Index("ix_outbound_messages_report_id", "report_id"),
    )

    @validates("to")
    def _hash_to(self, _key: str, to: str) -> str:
        self.to_hash = crypto.phone_hash(to)
        return to


class PhoneVerification(Base):
    """An open phone check: the SHA-256 of the code sent to the staff member, until confirmed."""

    __tablename__ = "phone_verifications"

    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    phone: Mapped[str] = mapped_column(EncryptedText())
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
