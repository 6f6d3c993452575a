from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from routing.crypto import EncryptedText
from routing.db import Base, UTCDateTime


class InboundMessage(Base):
    """Provider message ids already handled, so a redelivered webhook changes nothing."""

    __tablename__ = "inbound_messages"

    provider_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SosCall(Base):
    """A call to the SOS number, from the moment it arrived (when the promise clock starts)."""

    __tablename__ = "sos_calls"

    call_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    from_number: Mapped[str] = mapped_column(EncryptedText())
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime())
    language: Mapped[str | None] = mapped_column(String(8))
    report_id: Mapped[str | None] = mapped_column(ForeignKey("reports.id"), index=True)
    # Set when the caller hung up before a colleague joined them.
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
