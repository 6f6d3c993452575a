"""Writing and reading audit events.

Every state change of a report writes one, in the same transaction as the change: a plain insert
that takes no lock (the sealer chains it shortly after, `routing.engine.sealer`). Events are never
updated or deleted, so they hold no customer data: a customer is their report, never a phone
number or a description; a phone number that slips into a detail (a provider's error message) is
masked.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from routing.audit.models import AuditEvent
from routing.phone import mask_phone


class EventType:
    RECEIVED = "received"
    PAGE_QUEUED = "page_queued"
    PAGE_SENT = "page_sent"
    PAGE_FAILED = "page_failed"
    PAGE_RETRY = "page_retry"
    PAGE_UNKNOWN = "page_unknown"
    PAGE_DELIVERED = "page_delivered"
    PAGE_CANCELED = "page_canceled"
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
    # Admin changes: `actor` is the token that made them, `data` names what changed by id.
    STAFF_CREATED = "staff_created"
    STAFF_CHANGED = "staff_changed"
    CHAIN_CREATED = "chain_created"
    SCHEDULE_CREATED = "schedule_created"
    SCHEDULE_CHANGED = "schedule_changed"
    SCHEDULE_DELETED = "schedule_deleted"
    OVERRIDE_CREATED = "override_created"
    OVERRIDE_DELETED = "override_deleted"
    TOKEN_CREATED = "token_created"
    ROTA_IMPORTED = "rota_imported"


# An international number, as providers write them in their error messages.
_PHONE = re.compile(r"\+\d(?:[ -]?\d){7,14}")


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return _PHONE.sub(lambda m: mask_phone(re.sub(r"[ -]", "", m.group(0))), value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


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
        "detail": _masked(detail)[:500],
        "data": _masked(data or {}),
    }
