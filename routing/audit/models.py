from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from routing.db import Base, BigIntId, UTCDateTime


class AuditEvent(Base):
    """An append-only record of something that happened; a report's timeline is its events.

    No customer data: a customer is their report, never a phone number or a description. Rows
    are never updated or deleted (a trigger refuses it): retention could not erase anything here."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    report_id: Mapped[str | None] = mapped_column(ForeignKey("reports.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    type: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(500))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_events_report_id", "report_id", "id"),)


class AuditSeal(Base):
    """One link of the hash chain over the audit events, appended by the sealer
    (`routing.engine.sealer`): seal `chain_no` covers event `event_id`, and
    `hash = SHA-256(prev_hash ‖ canonical(event))` with `prev_hash` the hash of seal
    `chain_no - 1` (64 zeros for the first). Append-only like the events."""

    __tablename__ = "audit_seals"

    chain_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("audit_events.id"), unique=True, index=True
    )
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
