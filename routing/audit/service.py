"""Writing and reading audit events.

Every state change of a report writes one, in the same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.audit.models import AuditEvent


class EventType:
    RECEIVED = "received"
    PAGE_SENT = "page_sent"
    PAGE_FAILED = "page_failed"
    PAGE_RETRY = "page_retry"
    PAGE_UNKNOWN = "page_unknown"
    PAGE_DELIVERED = "page_delivered"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    SLA_MISSED = "sla_missed"
    RESOLVED = "resolved"
    NO_CHAIN = "no_chain"
    ROUTED = "routed"  # the order in which a step pages its people, when it is not flat
    CONTACT = "contact"  # the customer got in touch again; it joined this open case
    CALLBACK_REQUESTED = "callback_requested"
    # The outbound-content guard removed an IBAN, card number, amount or balance from a text.
    CONTENT_BLOCKED = "content_blocked"
    # A text to a customer (receipt, "Anna calls you now") that did not or may not have arrived.
    MESSAGE_FAILED = "message_failed"
    MESSAGE_UNKNOWN = "message_unknown"
    PHONE_VERIFIED = "phone_verified"
    # The escalation auditor found this report's escalation stuck or lost and repaired it.
    AUDIT_REPAIR = "audit_repair"


def record(
    session: AsyncSession,
    *,
    at: datetime,
    type: str,
    detail: str,
    report_id: str | None = None,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        **row(at=at, type=type, detail=detail, report_id=report_id, actor=actor, data=data)
    )
    session.add(event)
    return event


def row(
    *,
    at: datetime,
    type: str,
    detail: str,
    report_id: str | None = None,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An event as a row, for the hot paths that insert on the driver (routing/sql.py)."""
    return {
        "report_id": report_id,
        "at": at,
        "type": type,
        "actor": actor,
        "detail": detail[:500],
        "data": data or {},
    }


async def list_for_report(session: AsyncSession, report_id: str) -> Sequence[AuditEvent]:
    await session.flush()
    rows = await session.scalars(
        select(AuditEvent).where(AuditEvent.report_id == report_id).order_by(AuditEvent.id)
    )
    return rows.all()
