"""Phone verification: a random 6-digit code goes to a staff member's phone by SMS or by a call
that says it; only a SHA-256 of it (bound to the staff member and the phone) is kept, for 10
minutes and 5 tries. Confirming it marks the phone verified.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from routing.audit import service as audit
from routing.audit.service import EventType
from routing.errors import TooManyRequests, ValidationFailed
from routing.notify import texts
from routing.notify.models import OutboundMessage, PhoneVerification
from routing.notify.outbox import SMS, VERIFICATION, VOICE, queue
from routing.page.messages import staff_language
from routing.phone import can_receive_sms, normalize_phone
from routing.staff import service as staff_service
from routing.staff.models import Staff

CODE_DIGITS = 6
CODE_VALID = timedelta(minutes=10)
MAX_ATTEMPTS = 5
# At most this many codes per staff member per hour: each one is an SMS or a call we pay for.
MAX_CODES_PER_HOUR = 5

VerifyChannel = Literal["sms", "voice"]


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
    # One request per person at a time: the count below and the replaced code stay consistent.
    await session.execute(select(Staff.id).where(Staff.id == staff.id).with_for_update())
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
    await queue(
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
