"""The statements of a new report's intake, on the driver connection (routing/sql.py): intake is
the hottest path of a phishing wave, and these few statements are most of its cost.

`service.submit` decides; this module only reads and writes rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from routing.audit.models import AuditEvent
from routing.page.models import EscalationTimer
from routing.report.models import IdempotencyKey, Report
from routing.report.reference import new_reference
from routing.sql import Raw
from routing.types import ReportStatus


async def claim_idempotency_key(
    raw: Raw, *, scope: str, key: str, digest: str, report_id: str, now: datetime
) -> bool:
    """Write the key for `report_id`; False when the key was used before."""
    inserted = await raw.insert(
        IdempotencyKey,
        [
            {
                "scope": scope,
                "key": key,
                "request_hash": digest,
                "report_id": report_id,
                "created_at": now,
            }
        ],
        returning="report_id",
        on_conflict_do_nothing=True,
    )
    return bool(inserted)


async def lock_customer(raw: Raw, keys: Sequence[str]) -> None:
    """On PostgreSQL, one intake per customer at a time (transaction-scoped advisory locks, taken
    in a fixed order). SQLite runs one write transaction at a time anyway."""
    if raw.postgres:
        for key in sorted(keys):
            await raw.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)


async def customer_history(
    raw: Raw, *, phone_hash: str | None, customer_ref: str | None, handled_since: datetime
) -> tuple[str | None, str | None]:
    """In one query: the customer's open case (the oldest, locked), and who handled their case
    since `handled_since` (accepted it, or resolved it, since then). The phone is matched by its
    keyed hash (`routing.crypto.phone_hash`): the number itself is stored encrypted."""
    if phone_hash is None and customer_ref is None:
        return None, None
    rows = await raw.fetch(
        "SELECT id, status, acknowledged_by_id, coalesce(resolved_at, acknowledged_at) "
        "FROM reports WHERE (callback_phone_hash = $1 OR customer_ref = $2) "
        "AND (status <> $3 OR coalesce(resolved_at, acknowledged_at) >= $4) "
        "ORDER BY received_at, id LIMIT 20" + (" FOR UPDATE" if raw.postgres else ""),
        phone_hash,
        customer_ref,
        str(ReportStatus.RESOLVED),
        handled_since,
    )
    case = next((row[0] for row in rows if row[1] != ReportStatus.RESOLVED), None)
    handled = [(raw.time(row[3]), row[2]) for row in rows if row[2] is not None]
    recent = [(at, who) for at, who in handled if at is not None and at >= handled_since]
    return case, max(recent)[1] if recent else None


async def insert_report(raw: Raw, values: dict[str, Any]) -> str:
    """Insert a report under a fresh unused reference; returns the reference. `values` are in
    plaintext: `Raw.insert` encrypts the phone number and the description."""
    while True:
        reference = new_reference()
        row = {**values, "reference": reference}
        if await raw.insert(Report, [row], returning="id", on_conflict_do_nothing=True):
            return reference


async def insert_events(raw: Raw, events: Sequence[dict[str, Any]]) -> None:
    await raw.insert(AuditEvent, events)


async def insert_timers(
    raw: Raw, report_id: str, due: Sequence[tuple[str, int, int, datetime]], now: datetime
) -> None:
    """Timers of a new report: (kind, step_no, attempt_no, due_at) each."""
    await raw.insert(
        EscalationTimer,
        [
            {
                "report_id": report_id,
                "kind": kind,
                "step_no": step_no,
                "attempt_no": attempt_no,
                "due_at": due_at,
                "state": "pending",
                "fence": 0,
                "created_at": now,
            }
            for kind, step_no, attempt_no, due_at in due
        ],
    )
