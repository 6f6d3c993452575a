"""Customer texts, queued as outbox rows: the receipt, "Anna van het fraudeteam belt u nu", a
callback appointment. And, re-exported here, the content guard (`guarded`) and phone verification
(`start_verification`, `confirm_verification`, from `routing.notify.verification`).

Every function runs in a transaction the caller owns and never commits. A queued text is an
`OutboundMessage` in state `pending`; the engine's `Messenger` sends it after the commit. Every
body passes the outbound-content guard on its way into the outbox, so what is stored is what may
be sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfoNotFoundError

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from routing.errors import ValidationFailed
from routing.notify import texts
from routing.notify.models import OutboundMessage
from routing.notify.outbox import ACCEPTED, CALLBACK, RECEIPT, SMS, guarded, queue
from routing.notify.verification import (
    CODE_DIGITS,
    NEW_CODE,
    confirm_verification,
    start_verification,
)
from routing.phone import can_receive_sms
from routing.report.models import Report
from routing.staff.models import Staff
from routing.types import IntakeChannel

__all__ = [
    "CODE_DIGITS",
    "NEW_CODE",
    "cancel_for_report",
    "confirm_verification",
    "guarded",
    "queue_accepted",
    "queue_callback_confirmation",
    "queue_receipt",
    "start_verification",
]

# Reports that came by phone or SMS get their receipt by SMS; web and app show the status page.
RECEIPT_CHANNELS = frozenset({IntakeChannel.SOS_LINE, IntakeChannel.SMS})


async def _first_of(session: AsyncSession, report_id: str, kind: str) -> OutboundMessage | None:
    found: OutboundMessage | None = await session.scalar(
        select(OutboundMessage)
        .where(OutboundMessage.report_id == report_id, OutboundMessage.kind == kind)
        .order_by(OutboundMessage.id)
        .limit(1)
    )
    return found


async def _text_customer(
    session: AsyncSession, report: Report, *, kind: str, body: str, now: datetime
) -> OutboundMessage | None:
    """Queue an SMS to the report's customer, in the report's language; `None` when no SMS
    reaches their number (a landline, a withheld caller id)."""
    if not can_receive_sms(report.callback_phone):
        return None
    return await queue(
        session,
        kind=kind,
        channel=SMS,
        to=report.callback_phone,
        language=report.language,
        body=body,
        now=now,
        report_id=report.id,
    )


async def queue_receipt(
    session: AsyncSession, *, report: Report, now: datetime
) -> OutboundMessage | None:
    """The receipt SMS (reference and promise) for a report made by phone or SMS; `None` for the
    web and the app (their status page is the receipt) and for a number no SMS reaches.
    Once per report: a second call returns the first receipt."""
    if report.channel not in RECEIPT_CHANNELS:
        return None
    earlier = await _first_of(session, report.id, RECEIPT)
    if earlier is not None:
        return earlier
    body = texts.receipt(
        language=report.language,
        reference=report.reference,
        minutes_promised=texts.promise_minutes(report.received_at, report.deadline_at),
    )
    return await _text_customer(session, report, kind=RECEIPT, body=body, now=now)


async def queue_accepted(
    session: AsyncSession, *, report: Report, staff: Staff, now: datetime
) -> OutboundMessage | None:
    """ "Anna van het fraudeteam belt u nu": to the customer's phone, whatever channel the report
    came by, as their phone is about to ring. Once per report; `None` when no SMS reaches the
    number (a withheld caller id, a landline)."""
    earlier = await _first_of(session, report.id, ACCEPTED)
    if earlier is not None:
        return earlier
    body = texts.accepted(
        language=report.language,
        reference=report.reference,
        staff_name=staff.name,
        category=report.category,
    )
    return await _text_customer(session, report, kind=ACCEPTED, body=body, now=now)


async def queue_callback_confirmation(
    session: AsyncSession,
    *,
    report: Report,
    at: datetime,
    now: datetime,
    time_zone: str = texts.HOME_ZONE,
) -> OutboundMessage | None:
    """ "We bellen u op maandag 5 januari om 14:30": the appointment on the wall clock of
    `time_zone`. An earlier confirmation of this report not yet sent is canceled (only the latest
    appointment is confirmed). `None` when no SMS reaches the number."""
    try:
        body = texts.callback_scheduled(
            language=report.language, reference=report.reference, at=at, time_zone=time_zone
        )
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed(f"unknown time zone {time_zone!r}", field="time_zone") from exc
    await cancel_for_report(session, report_id=report.id, now=now, kinds=[CALLBACK])
    return await _text_customer(session, report, kind=CALLBACK, body=body, now=now)


async def cancel_for_report(
    session: AsyncSession,
    *,
    report_id: str,
    now: datetime,
    kinds: Iterable[str] = (ACCEPTED, CALLBACK),
) -> int:
    """Cancel the report's texts of `kinds` not yet handed to a provider (a canceled callback).
    Receipts are left alone by default: one still waiting is worth sending. Returns how many."""
    del now  # kept for the uniform signature; a canceled text records no time
    result = await session.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.report_id == report_id,
            OutboundMessage.kind.in_(list(kinds)),
            OutboundMessage.state == "pending",
        )
        .values(state="canceled", lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
