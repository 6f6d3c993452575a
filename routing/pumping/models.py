from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from routing.db import Base, BigIntId, UTCDateTime


class CustomerSend(Base):
    """One text or call the guard let through to a customer: the velocity the breakers count,
    shared by every process. Numbers only as keyed hashes; rows older than the window are
    deleted as new sends come in."""

    __tablename__ = "customer_sends"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    number_key: Mapped[str] = mapped_column(String(32))
    prefix_key: Mapped[str] = mapped_column(String(32))

    __table_args__ = (Index("ix_customer_sends_at", "at"),)


class SendBreaker(Base):
    """A tripped breaker: customer texts and calls in its scope stop until `open_until`, or until
    an admin closes it (`closed_at`, `closed_by`). `scope` is `number`, `prefix` (the number
    without its last 4 digits) or `global`; `key` the keyed hash of the number or prefix (empty
    for `global`); `label` what an admin may see of it (a masked number, a prefix)."""

    __tablename__ = "send_breakers"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(8))
    key: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    open_until: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_send_breakers_scope_key", "scope", "key"),)


class SendBlock(Base):
    """A customer text or call the guard stopped, and why (what `GET /v1/admin/blocks` lists; the
    report's timeline has it as a `send_blocked` event too). The number only masked."""

    __tablename__ = "send_blocks"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    report_id: Mapped[str | None] = mapped_column(ForeignKey("reports.id"))
    channel: Mapped[str] = mapped_column(String(16))
    to: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(300))
