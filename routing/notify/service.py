"""Customer texts and phone verification, queued as outbox rows.

Every function runs in a transaction the caller owns and never commits. A queued text is an
`OutboundMessage` in state `pending`; the engine's `Messenger` sends it after the commit. Every
body passes the outbound-content guard (`guarded`) on its way into the outbox, so what is stored is
what may be sent.

Verification: a random 6-digit code goes to the staff member's phone by SMS or call; only a
SHA-256 of it (bound to the staff member and the phone) is kept, for 10 minutes and 5 tries.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfoNotFoundError

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from routing import guard
from routing.audit import service as audit
from routing.audit.service import EventType
from routing.errors import TooManyRequests, ValidationFailed
from routing.notify import texts
from routing.notify.models import OutboundMessage, PhoneVerification
from routing.page.messages import staff_language
from routing.phone import can_receive_sms, normalize_phone
from routing.report.models import Report
from routing.staff import service as staff_service
from routing.staff.models import Staff
from routing.types import IntakeChannel

log = logging.getLogger(__name__)

RECEIPT, ACCEPTED, CALLBACK, VERIFICATION = "receipt", "accepted", "callback", "verification"
SMS, VOICE = "sms", "voice"
# Reports that came by phone or SMS get their receipt by SMS; web and app show the status page.
RECEIPT_CHANNELS = frozenset({IntakeChannel.SOS_LINE, IntakeChannel.SMS})

CODE_DIGITS = 6
CODE_VALID = timedelta(minutes=10)
MAX_ATTEMPTS = 5
# At most this many codes per staff member per hour: each one is an SMS or a call we pay for.
MAX_CODES_PER_HOUR = 5

VerifyChannel = Literal["sms", "voice"]


# --- the guard ---------------------------------------------------------------------------------


def guarded(
    session: AsyncSession, text: str, *, report_id: str | None, now: datetime, where: str
) -> str:
    """`text` without IBANs, card numbers, amounts or balances. When something was removed, a
    `content_blocked` audit event names the kinds (never the content) and `where` it was found
    ("the receipt SMS", "a page call"). Synchronous: it only adds the event to the session."""
    result = guard.scrub(text)
    if result.blocked:
        kinds = ", ".join(result.found)
        log.warning(
            "outbound content guard removed %s from %s (report %s)", kinds, where, report_id
        )
        audit.record(
            session,
            at=now,
            type=EventType.CONTENT_BLOCKED,
            report_id=report_id,
            detail=f"removed {kinds} from {where} before sending",
            data={"found": list(result.found), "where": where},
        )
    return result.text


# --- queueing ----------------------------------------------------------------------------------


def _describe(kind: str, channel: str) -> str:
    how = "call" if channel == VOICE else "SMS"
    return f"the {kind} {how}"


async def _queue(
    session: AsyncSession,
    *,
    kind: str,
    channel: str,
    to: str,
    language: str,
    body: str,
    now: datetime,
    report_id: str | None = None,
    staff_id: str | None = None,
) -> OutboundMessage:
    safe = guarded(session, body, report_id=report_id, now=now, where=_describe(kind, channel))
    message = OutboundMessage(
        report_id=report_id,
        staff_id=staff_id,
        kind=kind,
        channel=channel,
        to=to,
        language=texts.language_of(language),
        body=safe[:1600],
        state="pending",
        due_at=now,
        fence=0,
        tries=0,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    return message


async def _first_of(session: AsyncSession, report_id: str, kind: str) -> OutboundMessage | None:
    found: OutboundMessage | None = await session.scalar(
        select(OutboundMessage)
        .where(OutboundMessage.report_id == report_id, OutboundMessage.kind == kind)
        .order_by(OutboundMessage.id)
        .limit(1)
    )
    return found


def _customer_sms_number(report: Report) -> str | None:
    """The customer's number if an SMS can reach it (not a landline, not "anonymous")."""
    return report.callback_phone if can_receive_sms(report.callback_phone) else None


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
    to = _customer_sms_number(report)
    if to is None:
        return None
    body = texts.receipt(
        language=report.language,
        reference=report.reference,
        minutes_promised=texts.promise_minutes(report.received_at, report.deadline_at),
    )
    return await _queue(
        session,
        kind=RECEIPT,
        channel=SMS,
        to=to,
        language=report.language,
        body=body,
        now=now,
        report_id=report.id,
    )


async def queue_accepted(
    session: AsyncSession, *, report: Report, staff: Staff, now: datetime
) -> OutboundMessage | None:
    """ "Anna van het fraudeteam belt u nu": to the customer's phone, whatever channel the report
    came by, as their phone is about to ring. Once per report; `None` when no SMS reaches the
    number (a withheld caller id, a landline)."""
    earlier = await _first_of(session, report.id, ACCEPTED)
    if earlier is not None:
        return earlier
    to = _customer_sms_number(report)
    if to is None:
        return None
    body = texts.accepted(
        language=report.language,
        reference=report.reference,
        staff_name=staff.name,
        category=report.category,
    )
    return await _queue(
        session,
        kind=ACCEPTED,
        channel=SMS,
        to=to,
        language=report.language,
        body=body,
        now=now,
        report_id=report.id,
    )


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
    to = _customer_sms_number(report)
    if to is None:
        return None
    return await _queue(
        session,
        kind=CALLBACK,
        channel=SMS,
        to=to,
        language=report.language,
        body=body,
        now=now,
        report_id=report.id,
    )


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


# --- phone verification ------------------------------------------------------------------------


def code_hash(*, staff_id: str, phone: str, code: str) -> str:
    """The stored form of a code: bound to the person and the phone it was sent to."""
    return hashlib.sha256(f"{staff_id}:{phone}:{code}".encode()).hexdigest()


async def _codes_sent_since(session: AsyncSession, staff_id: str, since: datetime) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(
                OutboundMessage.staff_id == staff_id,
                OutboundMessage.kind == VERIFICATION,
                OutboundMessage.created_at > since,
            )
        )
        or 0
    )


async def _drop_open_codes(session: AsyncSession, staff_id: str) -> None:
    """Forget the open verification and cancel any code text not yet sent."""
    verification = await session.get(PhoneVerification, staff_id)
    if verification is not None:
        await session.delete(verification)
        await session.flush()
    await session.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.staff_id == staff_id,
            OutboundMessage.kind == VERIFICATION,
            OutboundMessage.state == "pending",
        )
        .values(state="canceled", body=texts.CODE_REMOVED, lease_until=None)
        .execution_options(synchronize_session=False)
    )


async def start_verification(
    session: AsyncSession, *, staff: Staff, channel: VerifyChannel, now: datetime
) -> PhoneVerification:
    """Send a new code to `staff.phone` by SMS or call; it replaces any open one. Returns the open
    verification (its `expires_at` is what the caller shows)."""
    if channel not in (SMS, VOICE):
        raise ValidationFailed("channel must be sms or voice", field="channel")
    try:
        phone = normalize_phone(staff.phone)
    except ValueError as exc:
        raise ValidationFailed(
            "the staff member's phone is not a valid number", field="phone"
        ) from exc
    if channel == SMS and not can_receive_sms(phone):
        raise ValidationFailed("this number cannot receive SMS: ask for a call", field="channel")
    if channel == SMS and staff.sms_stopped_at is not None:
        raise ValidationFailed(
            "SMS to this number is turned off (STOP): ask for a call", field="channel"
        )
    if await _codes_sent_since(session, staff.id, now - timedelta(hours=1)) >= MAX_CODES_PER_HOUR:
        raise TooManyRequests(
            f"at most {MAX_CODES_PER_HOUR} codes an hour: try again later", field="channel"
        )
    await _drop_open_codes(session, staff.id)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    verification = PhoneVerification(
        staff_id=staff.id,
        phone=staff.phone,
        code_hash=code_hash(staff_id=staff.id, phone=staff.phone, code=code),
        attempts=0,
        expires_at=now + CODE_VALID,
        created_at=now,
    )
    session.add(verification)
    language = staff_language(staff.languages)
    valid_minutes = int(CODE_VALID.total_seconds() // 60)
    body = (
        texts.verification_sms(language=language, code=code, valid_minutes=valid_minutes)
        if channel == SMS
        else texts.verification_spoken(language=language, code=code)
    )
    await _queue(
        session,
        kind=VERIFICATION,
        channel=channel,
        to=phone,
        language=language,
        body=body,
        now=now,
        staff_id=staff.id,
    )
    return verification


NEW_CODE = "request a new code"


async def confirm_verification(
    session: AsyncSession, *, staff_id: str, code: str, now: datetime
) -> Staff:
    """Check `code` against the open verification; on success the phone counts as verified.

    Raises `ValidationFailed` (field `code`) for a wrong code, and voids the verification after
    `MAX_ATTEMPTS` wrong codes, on expiry, or when the phone changed since the code was sent.
    The caller must commit also when this raises: a wrong try that is rolled back was free.
    """
    staff = await staff_service.get(session, staff_id)
    verification = await session.get(
        PhoneVerification, staff_id, with_for_update=True, populate_existing=True
    )
    if verification is None:
        raise ValidationFailed(f"no code is waiting for confirmation: {NEW_CODE}", field="code")
    void_reason = None
    if now >= verification.expires_at:
        void_reason = "the code has expired"
    elif verification.phone != staff.phone:
        void_reason = "the phone number changed after the code was sent"
    elif verification.attempts >= MAX_ATTEMPTS:
        void_reason = "too many wrong codes"
    if void_reason is not None:
        await _drop_open_codes(session, staff_id)
        raise ValidationFailed(f"{void_reason}: {NEW_CODE}", field="code")
    given = code_hash(staff_id=staff_id, phone=verification.phone, code=code.strip())
    if not hmac.compare_digest(given.encode(), verification.code_hash.encode()):
        verification.attempts += 1
        if verification.attempts >= MAX_ATTEMPTS:
            await _drop_open_codes(session, staff_id)
            raise ValidationFailed(
                f"wrong code, and that was the last try: {NEW_CODE}", field="code"
            )
        left = MAX_ATTEMPTS - verification.attempts
        raise ValidationFailed(f"wrong code ({left} tries left)", field="code")
    staff.phone_verified_at = now
    await _drop_open_codes(session, staff_id)
    audit.record(
        session,
        at=now,
        type=EventType.PHONE_VERIFIED,
        actor=staff.id,
        detail=f"{staff.name} confirmed a code sent to their phone",
        data={"staff": {"id": staff.id, "name": staff.name}},
    )
    await session.flush()
    return staff
