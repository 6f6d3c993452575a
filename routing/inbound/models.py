from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from routing.db import Base, UTCDateTime


class InboundMessage(Base):
    """Provider message ids already handled, so a redelivered webhook changes nothing."""

    __tablename__ = "inbound_messages"

    provider_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
