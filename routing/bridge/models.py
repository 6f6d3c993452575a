from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from routing.crypto import EncryptedText
from routing.db import Base, BigIntId, UTCDateTime


class BridgeCall(Base):
    """An outbox row: call someone into a report's conference room (the voice bridge).

    `leg` is `customer` (called from the SOS number) or `staff` (the acceptor, when they did not
    accept on a call). States: pending → sending → sent → answered | failed.
    """

    __tablename__ = "bridge_calls"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id"))
    leg: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    to_number: Mapped[str] = mapped_column(EncryptedText())
    state: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fence: Mapped[int] = mapped_column(Integer, default=0)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    external_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("report_id", "leg"),
        Index(
            "ix_bridge_calls_due",
            "due_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )
